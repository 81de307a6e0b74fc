//! Where the archive lives, and the object-store calls that reach it.
//!
//! Everything goes through the `object_store` crate, so a local folder and a cloud
//! container are one code path; DataFusion queries the same store in place.

use crate::error::StoreError;
use crate::seal::{GatewayKey, TrustedKeys, parse_public_pem};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// The environment variable that names the archive when no `--archive` is given.
pub const ARCHIVE_ENV: &str = "TAPLINE_ARCHIVE";

/// The archive used when neither `--archive` nor `$TAPLINE_ARCHIVE` says otherwise.
pub const DEFAULT_ARCHIVE: &str = "./tapline-archive";

/// A parsed archive location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveLocation {
    /// A local folder (a plain path or a `file://` URL).
    Local(PathBuf),
    /// An Azure Blob Storage container and a folder in it (`az://CONTAINER/PREFIX`).
    Azure { container: String, prefix: String },
}

impl ArchiveLocation {
    /// Parses a plain path, a `file://` URL, or another URL scheme (refused with a
    /// message naming what is supported).
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::BadLocation {
            location: text.to_string(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(bad(
                "it is empty; give a folder path or a file:// URL".into()
            ));
        }
        if let Some(scheme_end) = text.find("://") {
            let scheme = &text[..scheme_end];
            return match scheme {
                "file" => {
                    let url = Url::parse(text).map_err(|e| bad(format!("not a valid URL: {e}")))?;
                    let path = url.to_file_path().map_err(|_| {
                        bad(
                            "a file:// URL needs an absolute path, e.g. file:///var/lib/tapline"
                                .into(),
                        )
                    })?;
                    Ok(ArchiveLocation::Local(path))
                }
                "az" => {
                    let rest = &text[scheme_end + 3..];
                    let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                    crate::azure::check_container_name(container).map_err(bad)?;
                    let prefix = prefix.trim_matches('/').to_string();
                    if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
                        return Err(bad(
                            "the folder after the container may not hold `.`, `..` or empty parts"
                                .into(),
                        ));
                    }
                    Ok(ArchiveLocation::Azure {
                        container: container.to_string(),
                        prefix,
                    })
                }
                other => Err(bad(format!(
                    "the `{other}://` scheme is not supported; use a folder path, a file:// URL or az://CONTAINER/PREFIX"
                ))),
            };
        }
        Ok(ArchiveLocation::Local(PathBuf::from(text)))
    }

    /// The location from a flag, else `$TAPLINE_ARCHIVE`, else the default folder.
    pub fn from_flag_or_env(flag: Option<&str>) -> Result<Self, StoreError> {
        match flag {
            Some(f) => Self::parse(f),
            None => match std::env::var(ARCHIVE_ENV) {
                Ok(v) if !v.trim().is_empty() => Self::parse(&v),
                _ => Self::parse(DEFAULT_ARCHIVE),
            },
        }
    }
}

impl std::fmt::Display for ArchiveLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveLocation::Local(p) => write!(f, "{}", p.display()),
            ArchiveLocation::Azure { container, prefix } if prefix.is_empty() => {
                write!(f, "az://{container}")
            }
            ArchiveLocation::Azure { container, prefix } => write!(f, "az://{container}/{prefix}"),
        }
    }
}

/// Segments larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 16 << 20;

/// Where large uploads are staged before their create-only commit; not a table folder,
/// so no query ever lists it.
pub const INCOMING: &str = "_incoming";

/// How a create-only write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object is new.
    Created,
    /// The same bytes were already there (an upload retried after a crash).
    AlreadyThere,
}
/// The size of one uploaded part.
const MULTIPART_PART_BYTES: usize = 8 << 20;

/// An opened archive: an object store and the URL DataFusion knows it by.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    /// The unprefixed store DataFusion resolves `root_url` paths against.
    query_store: Arc<dyn ObjectStore>,
    location: ArchiveLocation,
    root_url: Url,
}

impl Archive {
    /// Opens an archive for writing, creating a local folder if it is missing.
    pub fn create(location: &ArchiveLocation) -> Result<Self, StoreError> {
        match location {
            ArchiveLocation::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                    context: format!("cannot create archive folder {}", dir.display()),
                    source: e,
                })?;
            }
            // A container is created by `tapline archive init`, never implicitly: a
            // typo in a container name must not start a new archive somewhere else.
            ArchiveLocation::Azure { .. } => {}
        }
        Self::open(location)
    }

    /// Opens an existing archive for reading.
    pub fn open(location: &ArchiveLocation) -> Result<Self, StoreError> {
        match location {
            ArchiveLocation::Local(dir) => {
                let abs = std::fs::canonicalize(dir).map_err(|e| StoreError::BadLocation {
                    location: dir.display().to_string(),
                    reason: format!(
                        "no archive folder there ({e}); record some sessions with `tapline gateway` first, or pass --archive"
                    ),
                })?;
                let store = LocalFileSystem::new_with_prefix(&abs).map_err(|e| {
                    StoreError::ObjectStore {
                        operation: "open",
                        path: abs.display().to_string(),
                        source: e,
                    }
                })?;
                let root_url =
                    Url::from_directory_path(&abs).map_err(|_| StoreError::BadLocation {
                        location: abs.display().to_string(),
                        reason: "cannot be expressed as a file:// URL".into(),
                    })?;
                Ok(Archive {
                    store: Arc::new(store),
                    query_store: Arc::new(LocalFileSystem::new()),
                    location: location.clone(),
                    root_url,
                })
            }
            ArchiveLocation::Azure { container, prefix } => {
                let container_store: Arc<dyn ObjectStore> =
                    Arc::new(crate::azure::open_container(container)?);
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    container_store.clone()
                } else {
                    Arc::new(PrefixStore::new(container_store.clone(), prefix.as_str()))
                };
                let root = if prefix.is_empty() {
                    format!("az://{container}/")
                } else {
                    format!("az://{container}/{prefix}/")
                };
                let root_url = Url::parse(&root).map_err(|e| StoreError::BadLocation {
                    location: location.to_string(),
                    reason: format!("cannot be expressed as a URL: {e}"),
                })?;
                Ok(Archive {
                    store,
                    query_store: container_store,
                    location: location.clone(),
                    root_url,
                })
            }
        }
    }

    /// The location this archive was opened from.
    pub fn location(&self) -> &ArchiveLocation {
        &self.location
    }

    /// The object store, rooted at the archive.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The object store DataFusion reads the archive through, registered for
    /// [`Archive::root_url`]. Paths it receives are the URL's full path, so a local
    /// archive is read through an unprefixed file system store.
    pub fn store_for_datafusion(&self) -> Arc<dyn ObjectStore> {
        self.query_store.clone()
    }

    /// The URL of the archive root, ending in `/`.
    pub fn root_url(&self) -> &Url {
        &self.root_url
    }

    /// The URL of a table folder (`events/`, `sessions/`), for DataFusion.
    pub fn table_url(&self, table: &str) -> String {
        format!("{}{table}/", self.root_url)
    }

    /// Writes one object in full, create-only: an object already at `path` is never
    /// replaced. Finding one is fine only if it holds exactly these bytes (a re-upload
    /// after a crash); anything else is [`StoreError::Conflict`].
    pub async fn put(
        &self,
        path: &str,
        bytes: impl Into<bytes::Bytes>,
    ) -> Result<PutOutcome, StoreError> {
        let bytes = bytes.into();
        let p = ObjectPath::from(path);
        let opts = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&p, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) => {
                self.make_durable(path).await?;
                Ok(PutOutcome::Created)
            }
            Err(object_store::Error::AlreadyExists { .. }) => self.same_bytes(path, &bytes).await,
            Err(e) => Err(StoreError::ObjectStore {
                operation: "upload",
                path: path.to_string(),
                source: e,
            }),
        }
    }

    /// Writes one segment create-only (see [`Archive::put`]). Large ones go up in
    /// parts, so no single request carries the whole file: the parts go to a staging
    /// name under `_incoming/`, and one create-only copy commits them under `path`
    /// (a multipart upload cannot itself be conditional).
    pub async fn put_segment(
        &self,
        path: &str,
        bytes: bytes::Bytes,
    ) -> Result<PutOutcome, StoreError> {
        if bytes.len() <= MULTIPART_THRESHOLD {
            return self.put(path, bytes).await;
        }
        let staging = format!(
            "{INCOMING}/{path}.{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        let staged = ObjectPath::from(staging.as_str());
        let err = |operation, at: &str| {
            let at = at.to_string();
            move |e| StoreError::ObjectStore {
                operation,
                path: at,
                source: e,
            }
        };
        let upload = self
            .store
            .put_multipart(&staged)
            .await
            .map_err(err("upload", &staging))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_BYTES);
        for part in bytes.chunks(MULTIPART_PART_BYTES) {
            writer
                .wait_for_capacity(4)
                .await
                .map_err(err("upload", &staging))?;
            writer.write(part);
        }
        writer.finish().await.map_err(err("upload", &staging))?;
        let committed = self
            .store
            .copy_if_not_exists(&staged, &ObjectPath::from(path))
            .await;
        // The staging object has done its job either way.
        if let Err(e) = self.store.delete(&staged).await {
            tracing::debug!(staging, error = %e, "cannot remove a staging object; it is never read");
        }
        match committed {
            Ok(()) => {
                self.make_durable(path).await?;
                Ok(PutOutcome::Created)
            }
            Err(object_store::Error::AlreadyExists { .. }) => self.same_bytes(path, &bytes).await,
            Err(e) => Err(err("upload", path)(e)),
        }
    }

    /// An object already at `path`: accepted only if it holds exactly `bytes`.
    async fn same_bytes(&self, path: &str, bytes: &[u8]) -> Result<PutOutcome, StoreError> {
        let existing = self.get(path).await?;
        if existing.len() == bytes.len() && blake3::hash(&existing) == blake3::hash(bytes) {
            return Ok(PutOutcome::AlreadyThere);
        }
        Err(StoreError::Conflict {
            path: path.to_string(),
            reason: format!(
                "an object of {} bytes (blake3 {}) is already there, and this upload is {} bytes (blake3 {})",
                existing.len(),
                blake3::hash(&existing).to_hex(),
                bytes.len(),
                blake3::hash(bytes).to_hex()
            ),
        })
    }

    /// For a local archive, makes a new file and its folder entry durable before the
    /// spool lets go of what it holds (the object store does not fsync).
    async fn make_durable(&self, path: &str) -> Result<(), StoreError> {
        let ArchiveLocation::Local(_) = &self.location else {
            return Ok(());
        };
        let Ok(root) = self.root_url.to_file_path() else {
            return Ok(());
        };
        let file = root.join(path);
        tokio::task::spawn_blocking(move || {
            let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
            sync(&file)?;
            match file.parent() {
                Some(dir) => sync(dir),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| StoreError::segment("fsync task", e))?
        .map_err(|e| StoreError::Io {
            context: format!("cannot fsync archive file {path}"),
            source: e,
        })
    }

    /// Removes objects (compaction and retention do, after the ledger records it).
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        match self.store.delete(&ObjectPath::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::ObjectStore {
                operation: "delete",
                path: path.to_string(),
                source: e,
            }),
        }
    }

    /// Checks that the archive can be read: for a remote archive, one list call that
    /// turns a missing container or refused credentials into a plain explanation.
    pub async fn probe(&self) -> Result<(), StoreError> {
        if let ArchiveLocation::Azure { .. } = &self.location {
            self.store
                .list_with_delimiter(None)
                .await
                .map_err(|e| StoreError::BadLocation {
                    location: self.location.to_string(),
                    reason: crate::azure::describe_error(&e.to_string()),
                })?;
        }
        Ok(())
    }

    /// Lists the object paths under a folder of the archive (recursively).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_sized(prefix)
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    /// Lists the objects under a folder of the archive (recursively) with their sizes,
    /// sorted by path.
    pub async fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let p = ObjectPath::from(prefix);
        let metas: Vec<_> =
            self.store
                .list(Some(&p))
                .try_collect()
                .await
                .map_err(|e| StoreError::ObjectStore {
                    operation: "list",
                    path: prefix.to_string(),
                    source: e,
                })?;
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Reads one object in full.
    pub async fn get(&self, path: &str) -> Result<bytes::Bytes, StoreError> {
        let err = |e| StoreError::ObjectStore {
            operation: "download",
            path: path.to_string(),
            source: e,
        };
        let result = self.store.get(&ObjectPath::from(path)).await.map_err(err)?;
        result.bytes().await.map_err(err)
    }

    /// Publishes the gateway's public key under `keys/<key id>.pub`, so a verifier
    /// without `--pubkey` can find it (and is told that it did).
    pub async fn publish_key(&self, key: &GatewayKey) -> Result<(), StoreError> {
        self.put(
            &format!("keys/{}.pub", key.id()),
            key.public_pem().into_bytes(),
        )
        .await
        .map(|_| ())
    }

    /// The public keys published in the archive.
    pub async fn published_keys(&self) -> Result<TrustedKeys, StoreError> {
        let mut keys = TrustedKeys::default();
        for path in self.list("keys").await? {
            if !path.ends_with(".pub") {
                continue;
            }
            let pem = self.get(&path).await?;
            if let Ok(key) = parse_public_pem(&String::from_utf8_lossy(&pem)) {
                keys.add(key);
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_segments_go_up_in_parts_and_read_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = Archive::create(&ArchiveLocation::Local(tmp.path().into())).unwrap();
        let big: Vec<u8> = (0..MULTIPART_THRESHOLD + 3 * MULTIPART_PART_BYTES / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        archive
            .put_segment(
                "events/date=2026-01-01/big.parquet",
                bytes::Bytes::from(big.clone()),
            )
            .await
            .unwrap();
        let back = archive
            .get("events/date=2026-01-01/big.parquet")
            .await
            .unwrap();
        assert_eq!(back.len(), big.len());
        assert!(back == big);
        assert!(
            archive.list(INCOMING).await.unwrap().is_empty(),
            "the staging object is gone"
        );
        // The same bytes again: accepted. Other bytes at the same name: refused.
        let again = archive
            .put_segment(
                "events/date=2026-01-01/big.parquet",
                bytes::Bytes::from(big.clone()),
            )
            .await
            .unwrap();
        assert_eq!(again, PutOutcome::AlreadyThere);
        let mut other = big.clone();
        other[7] ^= 1;
        let err = archive
            .put_segment("events/date=2026-01-01/big.parquet", other.into())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        let back = archive
            .get("events/date=2026-01-01/big.parquet")
            .await
            .unwrap();
        assert!(back == big, "the first object is untouched");
    }

    #[tokio::test]
    async fn objects_are_created_once_and_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = Archive::create(&ArchiveLocation::Local(tmp.path().into())).unwrap();
        let path = "events/date=2026-01-01/gw-s-0000000000000001.parquet";
        assert_eq!(
            archive.put(path, b"first".to_vec()).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            archive.put(path, b"first".to_vec()).await.unwrap(),
            PutOutcome::AlreadyThere
        );
        let err = archive.put(path, b"second".to_vec()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(path) && text.contains("already there"),
            "{text}"
        );
        assert_eq!(&archive.get(path).await.unwrap()[..], b"first");
    }

    #[test]
    fn locations_parse_paths_and_file_urls() {
        assert_eq!(
            ArchiveLocation::parse("./a/b").unwrap(),
            ArchiveLocation::Local("./a/b".into())
        );
        assert_eq!(
            ArchiveLocation::parse("file:///var/tmp/x").unwrap(),
            ArchiveLocation::Local("/var/tmp/x".into())
        );
        assert_eq!(
            ArchiveLocation::parse("az://tapline/prod/eu/").unwrap(),
            ArchiveLocation::Azure {
                container: "tapline".into(),
                prefix: "prod/eu".into()
            }
        );
        assert_eq!(
            ArchiveLocation::parse("az://tapline").unwrap().to_string(),
            "az://tapline"
        );
        let err = ArchiveLocation::parse("az://Bad_Name/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("container name"), "{err}");
        let err = ArchiveLocation::parse("s3://bucket/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://"), "{err}");
        assert!(ArchiveLocation::parse("").is_err());
    }
}
