//! Server dialback (XEP-0220): the organisation's secrets and the keys
//! made from them (XEP-0185). Pure: no I/O beyond reading the secret files
//! at load; the exchanges themselves are driven by `stream` (inbound
//! `db:result`, `db:verify`) and `server::relay` (outbound, and the
//! verification connection to a partner's authoritative server).

mod hmac;
mod key;
mod secrets;

pub use key::{DialbackKey, KeyCheck};
pub use secrets::Secrets;
