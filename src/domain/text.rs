//! RFC 1035 §5.1 character-strings (TXT content), read and written byte for byte: `\DDD` is
//! one octet, `\X` is X, and any other character stands for its UTF-8 bytes. hickory's
//! zone-file reader turns `\195\169` into four octets, so TXT never goes through it.

/// Octets one character-string holds.
pub const MAX_STRING: usize = 255;

/// Characters shown as `\DDD` rather than as themselves: besides controls, those that change
/// how text around them is displayed (bidirectional overrides, zero-width characters), so a
/// listing cannot be made to read other than what is stored.
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// A name people give to things (tokens, projects, teams), trimmed: `None` unless it is 1 to
/// `max` characters with no control or display-changing character (a bidi override in a
/// listing would make it read as something else).
pub fn label_text(name: &str, max: usize) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty() && name.chars().count() <= max && !name.chars().any(is_deceptive);
    ok.then(|| name.to_string())
}

/// Content given without quotes: one logical string (spaces included), escapes read, cut
/// into character-strings of 255 octets.
pub fn unquoted(content: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = unescape(content)?;
    if bytes.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    Ok(bytes.chunks(MAX_STRING).map(<[u8]>::to_vec).collect())
}

/// Content in presentation form: character-strings separated by white space, each quoted
/// (`"a b"`) or a bare word (`ab`).
pub fn strings(content: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = content.trim_start();
    while !rest.is_empty() {
        let (token, after) = if let Some(inner) = rest.strip_prefix('"') {
            let end = closing_quote(inner).ok_or("a quoted string is not closed")?;
            let after = &inner[end + 1..];
            if !after.is_empty() && !after.starts_with(char::is_whitespace) {
                return Err("quoted strings must be separated by spaces".into());
            }
            (&inner[..end], after)
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if rest[..end].contains('"') {
                return Err("a quote inside an unquoted string needs a backslash".into());
            }
            (&rest[..end], &rest[end..])
        };
        let bytes = unescape(token)?;
        if bytes.len() > MAX_STRING {
            return Err(format!(
                "a character-string holds at most {MAX_STRING} octets; this one has {}",
                bytes.len()
            ));
        }
        out.push(bytes);
        rest = after.trim_start();
    }
    if out.is_empty() {
        return Err("content is empty".into());
    }
    Ok(out)
}

/// The index of the quote that closes a string whose opening quote is already consumed.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let next = chars.next().ok_or("a backslash ends the string")?;
        if let Some(d) = next.to_digit(10) {
            let (d2, d3) = (
                chars.next().and_then(|c| c.to_digit(10)),
                chars.next().and_then(|c| c.to_digit(10)),
            );
            let (Some(d2), Some(d3)) = (d2, d3) else {
                return Err("\\DDD takes exactly three decimal digits".into());
            };
            let value = d * 100 + d2 * 10 + d3;
            out.push(u8::try_from(value).map_err(|_| format!("\\{value:03} is more than 255"))?);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(out)
}

/// One character-string as canonical presentation text: quoted, `"` and `\` escaped,
/// printable UTF-8 kept as it is, every other octet as `\DDD`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if is_deceptive(c) => {
                    let mut buf = [0u8; 4];
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .for_each(|b| out.push_str(&format!("\\{b:03}")));
                }
                c => out.push(c),
            }
        }
        chunk.invalid().iter().for_each(|b| out.push_str(&format!("\\{b:03}")));
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_octets_and_utf8_is_its_bytes() {
        assert_eq!(strings(r#""caf\195\169""#).unwrap(), vec!["café".as_bytes().to_vec()]);
        assert_eq!(strings("\"café\"").unwrap(), vec!["café".as_bytes().to_vec()]);
        assert_eq!(
            strings(r#""a\"b" c\\d "" \255"#).unwrap(),
            vec![b"a\"b".to_vec(), b"c\\d".to_vec(), vec![], vec![255]]
        );
        assert_eq!(unquoted(r"x\065y z").unwrap(), vec![b"xAy z".to_vec()]);
        assert_eq!(
            unquoted(&"é".repeat(200))
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [255, 145]
        );
    }

    #[test]
    fn bad_strings_are_refused() {
        for bad in [r#""open"#, r#""a"b"#, r"\25", r"\256", "a\\", r#"a"b"#, ""] {
            assert!(strings(bad).is_err(), "{bad:?}");
        }
        assert!(strings(&format!("\"{}\"", "x".repeat(256))).is_err());
    }

    #[test]
    fn quoting_round_trips_every_octet() {
        let all: Vec<u8> = (0..=254).collect();
        for bytes in [
            all.as_slice(),
            "café ünïcode".as_bytes(),
            b"say \"hi\" \\o/",
            "\u{202E}evil".as_bytes(),
        ] {
            let text = quote(bytes);
            assert_eq!(strings(&text).unwrap(), vec![bytes.to_vec()], "{text}");
        }
        assert_eq!(quote("café".as_bytes()), "\"café\"");
        assert_eq!(
            quote("\u{202E}x".as_bytes()),
            r#""\226\128\174x""#,
            "a bidi override is shown escaped"
        );
    }
}
