//! xfed-gateway: the XMPP edge daemon (lands in its own commit).
fn main() {}
