//! The `lua` template filter: a value as a Lua literal, for every value a
//! Lua template (Prosody's configuration) writes.
//!
//! Strings become double-quoted literals in which only printable ASCII
//! other than `"` and `\` stands for itself: those two, every control
//! character and DEL are written as decimal escapes (`\ddd`, three digits,
//! so a following digit cannot extend them), and bytes above 127 pass
//! through (Lua strings are bytes, the config is UTF-8). A value Lua has
//! no literal for (null) is a template error, not a broken file.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// `{{ x | lua }}`: `x` as a Lua literal (string, number, boolean, list as
/// `{ a; b }`, map as `{ ["k"] = v; }`).
pub fn lua(value: &Value) -> Result<Value, Error> {
    let mut out = String::new();
    write(value, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write(value: &Value, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String => string(value.as_str().unwrap_or_default(), out),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Ok(i) = i64::try_from(value.clone()) {
                out.push_str(&i.to_string());
            } else {
                match f64::try_from(value.clone()) {
                    Ok(f) if f.is_finite() => out.push_str(&format!("{f:?}")),
                    _ => return Err(refuse(value)),
                }
            }
        }
        ValueKind::Seq => {
            out.push_str("{ ");
            for item in value.try_iter()? {
                write(&item, out)?;
                out.push_str("; ");
            }
            out.push('}');
        }
        ValueKind::Map => {
            out.push_str("{ ");
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                out.push('[');
                write(&key, out)?;
                out.push_str("] = ");
                write(&item, out)?;
                out.push_str("; ");
            }
            out.push('}');
        }
        _ => return Err(refuse(value)),
    }
    Ok(())
}

fn refuse(value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("cannot write {value:?} as a Lua value"),
    )
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' | '\\' => {
                out.push_str(&format!("\\{:03}", ch as u32));
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::lua;
    use minijinja::Value;

    /// Lua's own reading of `lit` (through `lua5.4`), as hex bytes.
    fn lua_reads(lit: &str) -> String {
        let script = format!(
            "local s = {lit}; io.write((s:gsub('.', function(c) return string.format('%02x', c:byte()) end)))"
        );
        let out = std::process::Command::new("lua5.4")
            .args(["-e", &script])
            .output()
            .expect("lua5.4 (Prosody's interpreter) is installed with Prosody");
        assert!(
            out.status.success(),
            "{lit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("hex")
    }

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Each hostile string reads back byte for byte in Lua.
    #[test]
    fn strings_survive_lua() {
        let hostile = [
            "plain.example",
            "quote\" and back\\slash",
            "\"; os.execute(\"id\") --",
            "]] [[ long brackets ]==]",
            "new\nline\r\nand\ttab",
            "del\u{7f} nul\u{0}1 esc\u{1b}9",
            "Zürich 東京 🎉",
            "\\0651",
        ];
        for s in hostile {
            let lit = lua(&Value::from(s)).expect("string").to_string();
            assert!(!lit.contains('\n'), "{lit}");
            assert_eq!(lua_reads(&lit), hex(s), "{s:?} as {lit}");
        }
    }

    #[test]
    fn lists_numbers_and_booleans_and_null_is_refused() {
        let v = lua(&Value::from(vec!["a\"b", "c"])).expect("list");
        assert_eq!(v.to_string(), "{ \"a\\034b\"; \"c\"; }");
        assert_eq!(lua(&Value::from(5269)).expect("int").to_string(), "5269");
        assert_eq!(lua(&Value::from(true)).expect("bool").to_string(), "true");
        assert!(lua(&Value::from(())).is_err());
    }
}
