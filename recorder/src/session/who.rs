//! Who a session belongs to, in the words holds, decisions and logs use.

/// The session's owner as holds and the admin API name it.
#[derive(Debug, Clone)]
pub struct SessionWho {
    pub session_id: String,
    pub user: String,
    pub groups: Vec<String>,
    pub connection: String,
}
