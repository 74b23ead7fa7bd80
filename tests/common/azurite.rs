//! Azurite (the Azure Blob emulator, from npm) for the blob tests: the instance `.ci/run` started
//! (`TERRAFARM_AZURITE_URL`), or one a test starts, stops and restarts itself. Everything talks to 127.0.0.1 only,
//! and the well-known development account key is used explicitly, so nothing can fall back to a managed-identity
//! endpoint or any outside address. Containers are made here with signed REST calls (object_store cannot).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};

pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's documented development key (public).
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    pub port: u16,
    child: Option<Child>,
    location: Option<tempfile::TempDir>,
}

fn azurite_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TERRAFARM_AZURITE_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/tools/node_modules/.bin/azurite-blob");
    p.exists().then_some(p)
}

/// A SAS signature: the string to sign, HMAC-SHA256 with the development account key, in base64.
fn sas_signature(to_sign: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(KEY).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A SAS field value escaped for a query string.
fn sas_escape(s: &str) -> String {
    s.replace('%', "%25").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D").replace(':', "%3A").replace(',', "%2C")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn unavailable(why: &str) -> Option<Azurite> {
    if ci() {
        panic!("Azurite is needed by the blob tests and {why} (CI=true: blob tests must not skip)");
    }
    eprintln!("note: {why}; skipping blob test (run `npm install` in .ci/tools, or set CI=true to make this fatal)");
    None
}

fn wait_port(port: u16, up: bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let open = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if open == up {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Azurite {
    /// The shared instance from `.ci/run` if there is one, else a private one.
    pub fn shared() -> Option<Azurite> {
        if let Some(url) = std::env::var("TERRAFARM_AZURITE_URL").ok().filter(|s| !s.is_empty()) {
            let port = url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("TERRAFARM_AZURITE_URL is http://127.0.0.1:PORT");
            return Some(Azurite { port, child: None, location: None });
        }
        Azurite::private()
    }

    /// A handle to an emulator someone else runs (no start/stop).
    pub fn at(port: u16) -> Azurite {
        Azurite { port, child: None, location: None }
    }

    /// A private instance on a free port, persisting to a temporary folder so it survives `stop`/`start`.
    pub fn private() -> Option<Azurite> {
        let Some(_) = azurite_bin() else { return unavailable("the azurite-blob binary is not installed") };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut a = Azurite { port, child: None, location: Some(tempfile::tempdir().unwrap()) };
        a.start();
        Some(a)
    }

    pub fn start(&mut self) {
        let dir = self.location.as_ref().expect("only a private Azurite can be started").path();
        let child = Command::new(azurite_bin().unwrap())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &self.port.to_string(), "--disableTelemetry", "--silent", "--skipApiVersionCheck", "--location"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob");
        self.child = Some(child);
        assert!(wait_port(self.port, true), "Azurite did not listen on 127.0.0.1:{} within 30 s", self.port);
    }

    /// Stops the emulator the way a service stops (SIGTERM: it saves its metadata, open requests fail).
    pub fn stop(&mut self) {
        let mut c = self.child.take().expect("only a private, running Azurite can be stopped");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let t0 = Instant::now();
        while c.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        c.kill().ok();
        c.wait().ok();
        assert!(wait_port(self.port, false), "Azurite still listening");
    }

    /// Path-style account endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    pub fn connection_string(&self) -> String {
        format!("DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};", self.endpoint())
    }

    /// An account SAS (blob service; read, write, delete, list, add, create; http allowed) signed with the
    /// development key, as a query string without '?'.
    pub fn account_sas(&self) -> String {
        let (sp, ss, srt, se, spr, sv) = ("rwdlac", "b", "sco", "2099-01-01T00:00:00Z", "https,http", "2021-12-02");
        let sig = sas_signature(&format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n"));
        format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}", sas_escape(se), sas_escape(spr), sas_escape(&sig))
    }

    /// A service SAS for the one blob `container/blob` (read only, signed resource `b`), as a query string: what a
    /// user given access to one input file holds.
    pub fn blob_sas(&self, container: &str, blob: &str) -> String {
        let (sp, se, spr, sv, sr) = ("r", "2099-01-01T00:00:00Z", "https,http", "2021-12-02", "b");
        let resource = format!("/blob/{ACCOUNT}/{container}/{blob}");
        let sig = sas_signature(&format!("{sp}\n\n{se}\n{resource}\n\n\n{spr}\n{sv}\n{sr}\n\n\n\n\n\n\n"));
        format!("sv={sv}&sr={sr}&sp={sp}&se={}&spr={}&sig={}", sas_escape(se), sas_escape(spr), sas_escape(&sig))
    }

    /// A fresh container with a unique name; returns the name.
    pub fn container(&self, tag: &str) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (status, body) = self.request("PUT", &format!("/{name}"), &[("restype", "container")], b"");
        assert_eq!(status, 201, "create container {name}: {}", String::from_utf8_lossy(&body));
        name
    }

    /// Blob names and sizes in `container` (committed blobs only, as any reader sees them).
    pub fn list(&self, container: &str) -> Vec<(String, u64)> {
        self.try_list(container).expect("list blobs")
    }

    /// As `list`, but `None` while the emulator is down.
    pub fn try_list(&self, container: &str) -> Option<Vec<(String, u64)>> {
        let (status, body) = self.try_request("GET", &format!("/{container}"), &[("comp", "list"), ("restype", "container")], b"")?;
        if status != 200 {
            return None; // starting up or shutting down
        }
        let xml = String::from_utf8(body).unwrap();
        Some(
            xml.split("<Blob>")
                .skip(1)
                .map(|b| {
                    let field = |tag: &str| b.split(&format!("<{tag}>")).nth(1).and_then(|s| s.split(&format!("</{tag}>")).next()).unwrap_or("").to_string();
                    (field("Name"), field("Content-Length").parse().unwrap())
                })
                .collect(),
        )
    }

    pub fn get(&self, container: &str, name: &str) -> Vec<u8> {
        let (status, body) = self.request("GET", &format!("/{container}/{name}"), &[], b"");
        assert_eq!(status, 200, "get {container}/{name}");
        body
    }

    pub fn put(&self, container: &str, name: &str, bytes: &[u8]) {
        let (status, body) = self.request("PUT", &format!("/{container}/{name}"), &[], bytes);
        assert_eq!(status, 201, "put {container}/{name}: {}", String::from_utf8_lossy(&body));
    }

    /// Number of committed blocks of a blob (0 for a blob written in one Put Blob).
    pub fn committed_blocks(&self, container: &str, name: &str) -> usize {
        let (status, body) = self.request("GET", &format!("/{container}/{name}"), &[("blocklisttype", "committed"), ("comp", "blocklist")], b"");
        assert_eq!(status, 200, "blocklist {container}/{name}");
        String::from_utf8_lossy(&body).matches("<Block>").count()
    }

    /// Every blob of `container` under `prefix`, name relative to the prefix → bytes, manifest's `run` removed (as
    /// `common::tree` does for folders).
    pub fn tree(&self, container: &str, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut m = std::collections::BTreeMap::new();
        for (name, _) in self.list(container) {
            let Some(rel) = name.strip_prefix(&format!("{prefix}/")) else { continue };
            let mut bytes = self.get(container, &name);
            if rel.ends_with("manifest.json") {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                v.as_object_mut().unwrap().remove("run");
                bytes = serde_json::to_vec(&v).unwrap();
            }
            m.insert(rel.to_string(), bytes);
        }
        m
    }

    /// One Shared Key signed request (Blob service REST, path-style), HTTP/1.1 with `Connection: close`.
    /// `query` must be sorted by name.
    pub fn request(&self, method: &str, path: &str, query: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
        self.try_request(method, path, query, body).expect("request to Azurite")
    }

    /// As `request`, but `None` when the connection fails (emulator down or stopping).
    pub fn try_request(&self, method: &str, path: &str, query: &[(&str, &str)], body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-12-02";
        let len = if body.is_empty() { String::new() } else { body.len().to_string() };
        let blob_type = if method == "PUT" && query.is_empty() { "x-ms-blob-type:BlockBlob\n" } else { "" };
        let mut resource = format!("/{ACCOUNT}/{ACCOUNT}{path}");
        for (k, v) in query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!("{method}\n\n\n{len}\n\n\n\n\n\n\n\n\n{blob_type}x-ms-date:{date}\nx-ms-version:{version}\n{resource}");
        let key = base64::engine::general_purpose::STANDARD.decode(KEY).unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let target = if qs.is_empty() { format!("/{ACCOUNT}{path}") } else { format!("/{ACCOUNT}{path}?{}", qs.join("&")) };
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        if !blob_type.is_empty() {
            req.push_str("x-ms-blob-type: BlockBlob\r\n");
        }
        req.push_str("\r\n");
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(req.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).ok()?;
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = resp[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            let mut out = Vec::new();
            let mut rest = &body[..];
            loop {
                let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
                let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
                rest = &rest[nl + 2 + n + 2..];
            }
            body = out;
        }
        Some((status, body))
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}
