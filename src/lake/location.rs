use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use url::Url;

use super::LakeError;

/// Where the lake lives: a local directory, an S3 bucket prefix (MinIO too, through the
/// usual AWS_* environment variables and AWS_ENDPOINT_URL), or process memory.
#[derive(Clone)]
pub struct LakeLocation {
    root: Url,
    /// memory:// tables share one store so they can see each other within the process.
    memory: Option<Arc<InMemory>>,
}

impl std::fmt::Debug for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeLocation({})", self.root)
    }
}

impl std::fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never go into URLs here (they come from the environment), but strip
        // any user info a user may have typed so it is never logged.
        let mut shown = self.root.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        write!(f, "{shown}")
    }
}

impl LakeLocation {
    pub fn parse(text: &str) -> Result<Self, LakeError> {
        let bad = || LakeError::Location(text.to_owned());
        if text.trim().is_empty() {
            return Err(bad());
        }
        let root = match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "file" | "s3" | "s3a" | "memory") => url,
            Ok(url) if url.scheme().len() > 1 => return Err(bad()),
            // A plain path (a one-letter "scheme" is a Windows drive).
            _ => {
                let path = std::path::absolute(text).map_err(|_| bad())?;
                Url::from_directory_path(&path).map_err(|_| bad())?
            }
        };
        let memory = (root.scheme() == "memory").then(|| Arc::new(InMemory::new()));
        Ok(LakeLocation {
            root: with_trailing_slash(root),
            memory,
        })
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn table_url(&self, table: &str) -> Url {
        // The root always ends with '/', so join appends.
        self.root
            .join(&format!("{table}/"))
            .unwrap_or_else(|_| self.root.clone())
    }

    pub(crate) fn shared_store(&self) -> Option<Arc<dyn ObjectStore>> {
        self.memory.clone().map(|m| m as Arc<dyn ObjectStore>)
    }

    /// Local tables need their directory to exist before Delta can write its log.
    pub(crate) fn prepare_table(&self, table: &str) -> Result<(), LakeError> {
        let Some(path) = self.local_path(table) else {
            return Ok(());
        };
        std::fs::create_dir_all(&path).map_err(|cause| LakeError::Directory {
            path: path.display().to_string(),
            cause,
        })
    }

    /// For a local lake: whether the table has a Delta log at all. `None` elsewhere.
    pub(crate) fn local_table_exists(&self, table: &str) -> Option<bool> {
        self.local_path(table)
            .map(|p| p.join("_delta_log").is_dir())
    }

    fn local_path(&self, table: &str) -> Option<std::path::PathBuf> {
        (self.root.scheme() == "file")
            .then(|| self.table_url(table).to_file_path().ok())
            .flatten()
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_become_file_urls() {
        let loc = LakeLocation::parse("/tmp/lake").unwrap();
        assert_eq!(loc.table_url("usage").as_str(), "file:///tmp/lake/usage/");
        let s3 = LakeLocation::parse("s3://bucket/lake").unwrap();
        assert_eq!(s3.table_url("usage").as_str(), "s3://bucket/lake/usage/");
        assert!(LakeLocation::parse("ftp://x/y").is_err());
        assert!(LakeLocation::parse("").is_err());
    }
}
