//! Links to one recorded session: `tapline://replay/<session id>?archive=<archive URL>`.
//!
//! `session_url(session_id)` prints them in query results, and `tapline replay` takes
//! one in place of a session id, so an auditor can hand a responder one string that
//! opens the right session in the right archive.

use url::Url;

/// The scheme and host every session link starts with.
pub const LINK_PREFIX: &str = "tapline://replay/";

/// A session link taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLink {
    pub session_id: String,
    /// The archive the link names (a `file://` or `az://` URL), when it names one.
    pub archive: Option<String>,
}

/// The link to a session of the archive at `archive_url`.
pub fn link(archive_url: &str, session_id: &str) -> String {
    // Form encoding writes a space as `+`; in a path that would read back as a plus.
    let id: String = url::form_urlencoded::byte_serialize(session_id.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let archive: String = url::form_urlencoded::byte_serialize(archive_url.as_bytes()).collect();
    format!("{LINK_PREFIX}{id}?archive={archive}")
}

/// Reads a link back; `None` when the text is not a session link (a plain session id,
/// say).
pub fn parse(text: &str) -> Option<SessionLink> {
    if !text.starts_with(LINK_PREFIX) {
        return None;
    }
    let url = Url::parse(text).ok()?;
    let id = url.path().trim_start_matches('/');
    let session_id = percent_decode(id)?;
    if session_id.is_empty() {
        return None;
    }
    let archive = url
        .query_pairs()
        .find(|(k, _)| k == "archive")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    Some(SessionLink {
        session_id,
        archive,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    // A path segment decodes like a form value once `+` is taken literally.
    let escaped = s.replace('+', "%2B");
    let pairs = format!("v={escaped}");
    url::form_urlencoded::parse(pairs.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_names_its_session_and_archive_and_reads_back() {
        let l = link("az://tapline/prod/", "01JDB2V8W9X4C7Q3M5N6P8R0ST");
        assert_eq!(
            l,
            "tapline://replay/01JDB2V8W9X4C7Q3M5N6P8R0ST?archive=az%3A%2F%2Ftapline%2Fprod%2F"
        );
        assert_eq!(
            parse(&l),
            Some(SessionLink {
                session_id: "01JDB2V8W9X4C7Q3M5N6P8R0ST".into(),
                archive: Some("az://tapline/prod/".into()),
            })
        );
    }

    #[test]
    fn odd_characters_survive_the_round_trip() {
        let l = link("file:///var/lib/tap line/a+b?/", "id with/slash+plus&");
        let back = parse(&l).expect("a link");
        assert_eq!(back.session_id, "id with/slash+plus&");
        assert_eq!(
            back.archive.as_deref(),
            Some("file:///var/lib/tap line/a+b?/")
        );
    }

    #[test]
    fn plain_ids_and_other_urls_are_not_links() {
        assert_eq!(parse("01JDB2V8W9X4C7Q3M5N6P8R0ST"), None);
        assert_eq!(parse("https://replay/x"), None);
        assert_eq!(parse("tapline://replay/"), None);
        assert_eq!(parse("tapline://replay/abc").map(|l| l.archive), Some(None));
    }
}
