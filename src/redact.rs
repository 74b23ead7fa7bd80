//! Keeps credentials out of every line terrafarm prints: SAS signatures and tokens, account keys, connection
//! strings. Used on error messages, on URLs we describe, and as the writer under the log subscriber (dependencies
//! such as object_store log request URLs when they retry). Must not log or store anything itself.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

const MASK: &str = "REDACTED";

/// Query parameters of a SAS whose value is secret (the signature; the other fields are public metadata).
const SECRET_QUERY: [&str; 1] = ["sig"];
/// `key=value` pairs of a connection string (or query-like text) whose value is secret.
const SECRET_PAIRS: [&str; 9] =
    ["AccountKey", "SharedAccessSignature", "SharedAccessKey", "client_secret", "client_assertion", "access_token", "refresh_token", "id_token", "password"];
/// JSON members whose string value is secret (identity endpoints answer with these).
const SECRET_MEMBERS: [&str; 5] = ["access_token", "refresh_token", "id_token", "client_secret", "AccountKey"];

fn secrets() -> &'static Mutex<Vec<String>> {
    static S: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remembers a secret value (a key, a SAS token) so it is masked wherever it shows up later, in any form.
pub fn register_secret(s: &str) {
    let s = s.trim().trim_start_matches('?');
    if s.len() < 6 {
        return; // too short to be a credential, and masking it would garble ordinary text
    }
    if let Ok(mut v) = secrets().lock() {
        if !v.iter().any(|x| x == s) {
            v.push(s.to_string());
            // Parts of a SAS token show up on their own too (e.g. only `sig=` in a request URL).
            for part in s.split('&') {
                if let Some((_, val)) = part.split_once('=') {
                    if val.len() >= 16 {
                        v.push(val.to_string());
                    }
                }
            }
        }
    }
}

/// Replaces the value after `name=` (case-insensitive on the name) up to a delimiter.
fn mask_after(text: &str, name: &str, delims: &[char]) -> String {
    let lower = text.to_ascii_lowercase();
    let pat = format!("{}=", name.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(p) = lower[i..].find(&pat) {
        let start = i + p;
        // Only at a word start: `sig=` but not `xsig=`.
        let ok = start == 0 || !text[..start].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let vstart = start + pat.len();
        out.push_str(&text[i..vstart]);
        if ok {
            let vlen = text[vstart..].find(|c: char| delims.contains(&c) || c.is_whitespace()).unwrap_or(text.len() - vstart);
            if vlen > 0 {
                out.push_str(MASK);
            }
            i = vstart + vlen;
        } else {
            i = vstart;
        }
    }
    out.push_str(&text[i..]);
    out
}

/// `text` with every known secret and every SAS signature or key-like pair masked.
pub fn redact(text: &str) -> String {
    let mut s = text.to_string();
    for name in SECRET_QUERY {
        s = mask_after(&s, name, &['&', '"', '\'', ')', '>', ',', ';']);
    }
    for name in SECRET_PAIRS {
        s = mask_after(&s, name, &[';', '&', '"', '\'', ',']);
    }
    for name in SECRET_MEMBERS {
        s = mask_json_member(&s, name);
    }
    s = mask_bearer(&s);
    s = mask_jwts(&s);
    if let Ok(v) = secrets().lock() {
        for secret in v.iter() {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), MASK);
            }
            // Percent-encoded forms appear in URLs ('+' '/' '=' of base64).
            let enc = secret.replace('%', "%25").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
            if enc != *secret && s.contains(enc.as_str()) {
                s = s.replace(enc.as_str(), MASK);
            }
        }
    }
    s
}

/// `"name": "value"` (JSON, any spacing) → `"name": "REDACTED"`.
fn mask_json_member(text: &str, name: &str) -> String {
    let pat = format!("\"{name}\"");
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(p) = text[i..].find(&pat) {
        let after = i + p + pat.len();
        out.push_str(&text[i..after]);
        i = after;
        let rest = &text[after..];
        let trimmed = rest.trim_start_matches([' ', '\t', ':']);
        if rest.len() != trimmed.len() && trimmed.starts_with('"') {
            let vstart = after + (rest.len() - trimmed.len()) + 1;
            if let Some(len) = text[vstart..].find('"') {
                out.push_str(&text[after..vstart]);
                out.push_str(MASK);
                i = vstart + len;
            }
        }
    }
    out.push_str(&text[i..]);
    out
}

/// `Bearer <token>` (an Authorization header's value, any case) → `Bearer REDACTED`.
fn mask_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(p) = lower[i..].find("bearer ") {
        let vstart = i + p + "bearer ".len();
        out.push_str(&text[i..vstart]);
        let rest = &text[vstart..];
        let len = rest.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | ')')).unwrap_or(rest.len());
        if len >= 8 {
            out.push_str(MASK);
            i = vstart + len;
        } else {
            i = vstart;
        }
    }
    out.push_str(&text[i..]);
    out
}

/// JSON Web Tokens (OAuth access tokens from the identity chain: three base64url parts, the first `eyJ`) wherever
/// they appear.
fn mask_jwts(text: &str) -> String {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(p) = text[i..].find("eyJ") {
        let start = i + p;
        let boundary = !text[..start].chars().next_back().is_some_and(b64);
        let rest = &text[start..];
        let len = rest.find(|c: char| !(b64(c) || c == '.')).unwrap_or(rest.len());
        let token = &rest[..len];
        if boundary && token.split('.').filter(|part| !part.is_empty()).count() >= 2 && len >= 20 {
            out.push_str(&text[i..start]);
            out.push_str(MASK);
        } else {
            out.push_str(&text[i..start + 3]);
            i = start + 3;
            continue;
        }
        i = start + len;
    }
    out.push_str(&text[i..]);
    out
}

/// Replaces the default panic message with a redacted one (a panic can carry a URL or a header), and under MPI
/// (`abort_job`) ends the process abnormally after printing, so the launcher tears the whole job down instead of
/// leaving the other ranks waiting in a collective.
pub fn install_panic_hook(abort_job: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let _ = writeln!(std::io::stderr(), "terrafarm: internal error (panic){at}: {}", redact(&msg));
        if abort_job {
            std::process::abort();
        }
    }));
}

/// A URL without its query (where SAS tokens live), for messages.
pub fn url_for_display(url: &str) -> String {
    redact(url.split('?').next().unwrap_or(url))
}

/// Log writer: each formatted event is redacted, then written to stderr in one call.
pub struct RedactingStderr {
    buf: Vec<u8>,
}

impl Write for RedactingStderr {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let text = redact(&String::from_utf8_lossy(&self.buf));
            self.buf.clear();
            std::io::stderr().lock().write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// For `tracing_subscriber::fmt().with_writer(redact::stderr)`: the subscriber makes one writer per event.
pub fn stderr() -> RedactingStderr {
    RedactingStderr { buf: Vec::with_capacity(256) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_sas_and_keys() {
        let url = "https://acct.blob.core.windows.net/c/p?sv=2024-11-04&ss=b&sig=abc%2Bdef%3D&se=2030";
        let r = redact(url);
        assert!(!r.contains("abc%2Bdef"), "{r}");
        assert!(r.contains("sig=REDACTED&se=2030"), "{r}");
        let cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5Cg==;EndpointSuffix=core.windows.net";
        let r = redact(cs);
        assert!(!r.contains("c2VjcmV0a2V5"), "{r}");
        assert!(r.contains("AccountName=acct;AccountKey=REDACTED;EndpointSuffix"), "{r}");
        assert_eq!(redact("design=ok"), "design=ok");
    }

    #[test]
    fn masks_bearer_tokens_and_jwts() {
        // Issue #12, item 9: tokens of the identity path.
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3N0b3JhZ2UifQ.c2lnbmF0dXJlLXBhcnQ";
        for text in [
            format!("Authorization: Bearer {jwt}"),
            format!("header authorization=bearer {jwt}, retrying"),
            format!("{{\"token_type\":\"Bearer\",\"access_token\": \"{jwt}\",\"expires_in\":3599}}"),
            format!("token {jwt} expired"),
            "{\"refresh_token\":\"0.AAAA-opaque-refresh-token-value\"}".to_string(),
        ] {
            let r = redact(&text);
            assert!(!r.contains("c2lnbmF0dXJl") && !r.contains("opaque-refresh"), "{r}");
            assert!(r.contains(MASK), "{r}");
        }
        assert_eq!(redact("the bearer of bad news"), "the bearer of bad news");
        assert_eq!(redact("eyJ is not a token"), "eyJ is not a token");
    }

    #[test]
    fn masks_registered_secrets_in_any_form() {
        register_secret("ThisIsAFakeKey+/With==Padding");
        let r = redact("bad key ThisIsAFakeKey+/With==Padding and ThisIsAFakeKey%2B%2FWith%3D%3DPadding");
        assert!(!r.contains("ThisIsAFakeKey"), "{r}");
        assert_eq!(url_for_display("az://c/p?sig=zzz"), "az://c/p");
    }
}
