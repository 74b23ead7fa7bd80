//! Azure Blob Storage through `object_store` (its Azure backend: retries with backoff on 5xx/429/timeouts, block
//! uploads, managed identity). Small objects go up in one Put Blob; large ones as blocks with bounded concurrency,
//! committed by one Put Block List, so a blob is visible only when complete. Every message that leaves this module
//! is redacted (no key, SAS or connection string). object_store is async; this module owns one small runtime and
//! presents the synchronous [`Store`] the pipeline's threads call.
//!
//! Addresses:
//! - `az://<container>/<prefix>`: the account comes from the configuration (connection string or
//!   `AZURE_STORAGE_ACCOUNT_NAME`).
//! - `https://<account>.blob.core.windows.net/<container>/<prefix>[?<SAS>]`.
//! - `http(s)://<host>:<port>/<account>/<container>/<prefix>`: path-style, for emulators (Azurite) and IP endpoints;
//!   plain http only to a loopback host.
//!
//! Credentials, first match wins: `AZURE_STORAGE_CONNECTION_STRING`; an account key
//! (`AZURE_STORAGE_ACCOUNT_KEY`); a SAS (the URL's query, or `AZURE_STORAGE_SAS_TOKEN`); otherwise object_store's
//! environment chain (service principal, workload identity, managed identity: what a Batch node with a
//! user-assigned identity uses).

use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{Store, StoreError};
use crate::raster::ByteSource;
use crate::redact::{redact, register_secret, url_for_display};

/// Azurite's documented development account (public, not a secret).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Transfer and retry settings (flags `--blob-*`).
#[derive(Clone, Debug)]
pub struct BlobOptions {
    /// Retries per request after the first try (object_store backs off exponentially between them).
    pub retries: usize,
    /// No retry starts later than this after a request's first try: bounds how long a dead endpoint stalls a run.
    pub retry_timeout: Duration,
    /// One HTTP request's time limit.
    pub request_timeout: Duration,
    /// Objects larger than this are uploaded as blocks of this size.
    pub block_size: usize,
    /// Blocks of one object in flight at once (memory per upload ≈ concurrency × block size).
    pub concurrency: usize,
}

impl Default for BlobOptions {
    fn default() -> Self {
        BlobOptions { retries: 40, retry_timeout: Duration::from_secs(120), request_timeout: Duration::from_secs(60), block_size: 8 << 20, concurrency: 4 }
    }
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("terrafarm-blob")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the blob I/O runtime: {e}"))
    })
    .as_ref()
    .map_err(|e| StoreError::Config(e.clone()))
}

/// Where a blob URL points, before credentials.
#[derive(Debug, PartialEq)]
struct Target {
    account: Option<String>,
    container: String,
    prefix: String,
    /// Account endpoint (`https://acct.blob.core.windows.net` or `http://127.0.0.1:10000/acct`).
    endpoint: Option<String>,
    /// SAS token from the URL's query.
    sas: Option<String>,
}

fn bad(url: &str, why: &str) -> StoreError {
    StoreError::Config(format!("{}: {why}", url_for_display(url)))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn parse_target(url: &str) -> Result<Target, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q.to_string()).filter(|q| !q.is_empty())),
        None => (url, None),
    };
    if let Some(rest) = base.strip_prefix("az://").or_else(|| base.strip_prefix("azure://")) {
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if container.is_empty() {
            return Err(bad(url, "no container: write az://<container>/<prefix>"));
        }
        return Ok(Target { account: None, container: container.into(), prefix: prefix.trim_matches('/').into(), endpoint: None, sas: query });
    }
    let (scheme, rest) = base.split_once("://").ok_or_else(|| bad(url, "not a URL"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(|c| c == '[' || c == ']');
    if scheme == "http" && !is_loopback(hostname) {
        return Err(bad(url, "plain http is only allowed to a loopback emulator; use https"));
    }
    let mut path = path.trim_matches('/');
    let (account, endpoint) = match host.split_once(".blob.") {
        Some((acct, _)) if !acct.is_empty() && !acct.contains(':') => (acct.to_string(), format!("{scheme}://{host}")),
        _ => {
            // Path-style: the account is the first path segment.
            let (acct, rest) = path.split_once('/').unwrap_or((path, ""));
            if acct.is_empty() {
                return Err(bad(url, "no account in a path-style URL: http(s)://host:port/<account>/<container>/<prefix>"));
            }
            path = rest;
            (acct.to_string(), format!("{scheme}://{host}/{acct}"))
        }
    };
    let mut parts = path.splitn(2, '/');
    let container = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| bad(url, "no container in the URL"))?;
    let prefix = parts.next().unwrap_or("").trim_matches('/');
    Ok(Target { account: Some(account), container: container.into(), prefix: prefix.into(), endpoint: Some(endpoint), sas: query })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn sas_pairs(sas: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Builds the object_store client for `url`, choosing credentials in the documented order. Returns it with the
/// container-relative prefix and a display name without secrets.
fn connect(url: &str, opts: &BlobOptions) -> Result<(MicrosoftAzure, String, String), StoreError> {
    let t = parse_target(url)?;
    if let Some(s) = &t.sas {
        register_secret(s);
    }
    let retry = object_store::RetryConfig {
        backoff: object_store::BackoffConfig { init_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(15), base: 2.0 },
        max_retries: opts.retries,
        retry_timeout: opts.retry_timeout,
    };
    let mut client = ClientOptions::new().with_timeout(opts.request_timeout).with_connect_timeout(Duration::from_secs(5));
    let mut account = t.account.clone();
    let mut endpoint = t.endpoint.clone();
    let mut b = MicrosoftAzureBuilder::new();
    let via;
    if let Some(cs) = env("AZURE_STORAGE_CONNECTION_STRING") {
        register_secret(&cs);
        let kv: Vec<(String, String)> =
            cs.split(';').filter_map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))).collect();
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let dev = get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let cs_account = if dev { Some(DEV_ACCOUNT.to_string()) } else { get("accountname") };
        let Some(cs_account) = cs_account else {
            return Err(StoreError::Config("AZURE_STORAGE_CONNECTION_STRING has no AccountName".into()));
        };
        if let Some(a) = &account {
            if *a != cs_account {
                return Err(StoreError::Config(format!(
                    "{} names account '{a}' but AZURE_STORAGE_CONNECTION_STRING is for account '{cs_account}'",
                    url_for_display(url)
                )));
            }
        }
        let blob_endpoint = get("blobendpoint").map(|e| e.trim_end_matches('/').to_string()).or_else(|| {
            if dev {
                Some(format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"))
            } else {
                let proto = get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
                let suffix = get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
                Some(format!("{proto}://{cs_account}.blob.{suffix}"))
            }
        });
        // A URL with its own host keeps it; `az://` takes the connection string's endpoint.
        if endpoint.is_none() {
            endpoint = blob_endpoint;
        }
        account = Some(cs_account);
        if dev {
            b = b.with_access_key(DEV_KEY);
        } else if let Some(k) = get("accountkey") {
            register_secret(&k);
            b = b.with_access_key(k);
        } else if let Some(s) = get("sharedaccesssignature") {
            register_secret(&s);
            b = b.with_sas_authorization(sas_pairs(&s));
        } else {
            return Err(StoreError::Config("AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature".into()));
        }
        via = "connection string";
    } else if let Some(k) = env("AZURE_STORAGE_ACCOUNT_KEY").or_else(|| env("AZURE_STORAGE_ACCESS_KEY")) {
        register_secret(&k);
        b = b.with_access_key(k);
        via = "account key";
    } else if let Some(s) = t.sas.clone().or_else(|| env("AZURE_STORAGE_SAS_TOKEN")) {
        register_secret(&s);
        b = b.with_sas_authorization(sas_pairs(&s));
        via = "SAS";
    } else {
        // Service principal, workload identity or managed identity, as object_store reads them from AZURE_* vars.
        b = MicrosoftAzureBuilder::from_env();
        via = "environment identity";
    }
    let account = account.or_else(|| env("AZURE_STORAGE_ACCOUNT_NAME")).ok_or_else(|| {
        bad(url, "no storage account: use an https://<account>.blob.core.windows.net/... URL, AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME")
    })?;
    if let Some(e) = &endpoint {
        let host = e.split_once("://").map_or("", |(_, r)| r.split('/').next().unwrap_or(""));
        let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(|c| c == '[' || c == ']');
        if e.starts_with("http://") {
            if !is_loopback(hostname) {
                return Err(StoreError::Config(format!("blob endpoint {} is plain http to a non-loopback host; use https", redact(e))));
            }
            client = client.with_allow_http(true);
        }
        b = b.with_endpoint(e.clone());
    }
    let store = b
        .with_account(&account)
        .with_container_name(&t.container)
        .with_retry(retry)
        .with_client_options(client)
        .build()
        .map_err(|e| StoreError::Config(format!("{}: {}", url_for_display(url), redact(&e.to_string()))))?;
    let shown = format!("{} (account {account}, container {}, credentials: {via})", url_for_display(url), t.container);
    Ok((store, t.prefix, shown))
}

fn remote(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Remote(redact(&format!("{what}: {e}")))
}

/// A scene root in a blob container.
pub struct BlobStore {
    store: Arc<MicrosoftAzure>,
    prefix: String,
    shown: String,
    opts: BlobOptions,
}

impl BlobStore {
    pub fn open(url: &str, opts: &BlobOptions) -> Result<BlobStore, StoreError> {
        let (store, prefix, shown) = connect(url, opts)?;
        runtime()?;
        Ok(BlobStore { store: Arc::new(store), prefix, shown, opts: opts.clone() })
    }

    fn path(&self, key: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(key)
        } else {
            ObjPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output, StoreError> {
        Ok(runtime()?.block_on(f))
    }
}

impl Store for BlobStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key);
        let what = || format!("upload {} to {}", key, self.shown);
        if bytes.len() <= self.opts.block_size {
            // One Put Blob: atomic on the service side.
            let payload = PutPayload::from(bytes.to_vec());
            return self.block_on(self.store.put(&path, payload))?.map(drop).map_err(|e| remote(&what(), e));
        }
        // Put Block × n, then Put Block List: nothing is visible under `path` until the commit.
        self.block_on(async {
            let upload = self.store.put_multipart(&path).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, self.opts.block_size);
            for chunk in bytes.chunks(self.opts.block_size) {
                if let Err(e) = w.wait_for_capacity(self.opts.concurrency).await {
                    let _ = w.abort().await;
                    return Err(e);
                }
                w.write(chunk);
            }
            w.finish().await.map(drop)
        })?
        .map_err(|e| remote(&what(), e))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key);
        self.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(|e| remote(&format!("read {key} from {}", self.shown), e))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(key);
        match self.block_on(self.store.head(&path))? {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(&format!("look up {key} in {}", self.shown), e)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        // object_store deletes through the Blob Batch API; look first so that the common case (nothing to
        // delete) costs one HEAD and works with credentials that may not be allowed batch requests.
        if self.size(key)?.is_none() {
            return Ok(());
        }
        let path = self.path(key);
        match self.block_on(self.store.delete(&path))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(&format!("delete {key} in {}", self.shown), e)),
        }
    }

    /// Uncommitted blocks are never visible under a name (the service drops them after a week), so there is
    /// nothing to sweep.
    fn remove_partials(&self, _prefix: &str) -> Result<usize, StoreError> {
        Ok(0)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

/// A blob input read with ranged GETs: windowed formats fetch only the rows they need.
struct BlobInput {
    store: Arc<MicrosoftAzure>,
    path: ObjPath,
    len: u64,
    /// The blob's ETag: changes whenever its content does, so it identifies the input without reading it whole.
    etag: Option<String>,
}

fn io_err(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(redact(&e.to_string()))
}

impl ByteSource for BlobInput {
    fn len(&self) -> u64 {
        self.len
    }
    fn identity(&self) -> Option<String> {
        self.etag.as_ref().map(|e| format!("etag:{}:{}", e.trim_matches('"'), self.len))
    }
    fn sibling(&self, suffix: &str) -> std::io::Result<Option<Arc<dyn ByteSource>>> {
        let path = ObjPath::from(format!("{}{suffix}", self.path));
        match runtime().map_err(|e| std::io::Error::other(e.to_string()))?.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(Arc::new(BlobInput { store: self.store.clone(), path, len: meta.size, etag: meta.e_tag }))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            // A SAS scoped to the input blob alone may not look at its neighbours: read the input without them.
            Err(object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }) => {
                tracing::warn!("{path}: not allowed to look for it next to the input (a SAS for the input blob alone?); read without it");
                Ok(None)
            }
            Err(e) => Err(io_err(e)),
        }
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.read_many(&mut [(off, buf)])
    }
    fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> std::io::Result<()> {
        let ranges: Vec<Range<u64>> = reqs.iter().map(|(o, b)| *o..*o + b.len() as u64).collect();
        if ranges.iter().any(|r| r.end > self.len) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let rt = runtime().map_err(std::io::Error::other)?;
        // object_store merges ranges closer than 1 MiB into one request and fetches the rest concurrently.
        let got = rt.block_on(self.store.get_ranges(&self.path, &ranges)).map_err(io_err)?;
        for ((_, buf), bytes) in reqs.iter_mut().zip(got) {
            if bytes.len() != buf.len() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.copy_from_slice(&bytes);
        }
        Ok(())
    }
}

/// Opens the blob at `url` (same addresses and credentials as outputs; the prefix is the blob's name) for
/// reading. Returns it with a name for messages (no query, no secrets).
pub fn open_input(url: &str, opts: &BlobOptions) -> Result<(Arc<dyn ByteSource>, String), StoreError> {
    let (store, name, shown) = connect(url, opts)?;
    if name.is_empty() {
        return Err(bad(url, "names a container, not a blob"));
    }
    let path = ObjPath::from(name);
    let meta = runtime()?.block_on(store.head(&path)).map_err(|e| remote(&format!("open input {shown}"), e))?;
    Ok((Arc::new(BlobInput { store: Arc::new(store), path, len: meta.size, etag: meta.e_tag }), url_for_display(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_address_forms() {
        let t = parse_target("az://tiles/runs/a/").unwrap();
        assert_eq!((t.account, t.container.as_str(), t.prefix.as_str(), t.endpoint), (None, "tiles", "runs/a", None));
        let t = parse_target("https://acct.blob.core.windows.net/c/p/q?sv=1&sig=abc").unwrap();
        assert_eq!(t.account.as_deref(), Some("acct"));
        assert_eq!(t.endpoint.as_deref(), Some("https://acct.blob.core.windows.net"));
        assert_eq!((t.container.as_str(), t.prefix.as_str(), t.sas.as_deref()), ("c", "p/q", Some("sv=1&sig=abc")));
        let t = parse_target("http://127.0.0.1:10000/devstoreaccount1/c").unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:10000/devstoreaccount1"));
        assert_eq!((t.account.as_deref(), t.container.as_str(), t.prefix.as_str()), (Some("devstoreaccount1"), "c", ""));
    }

    #[test]
    fn refuses_bad_addresses_without_echoing_secrets() {
        for u in ["az://", "http://example.com/a/c/p", "https://acct.blob.core.windows.net/?sig=SECRETSIG", "https://host:1/acct?sig=SECRETSIG"] {
            let e = parse_target(u).unwrap_err().to_string();
            assert!(!e.contains("SECRETSIG"), "{e}");
        }
    }
}
