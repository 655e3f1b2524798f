//! One error type for the whole feed: a kind a caller (or a test, or a monitoring rule) can match
//! on, and a message that says what happened in words an operator can act on.

use std::fmt;

/// What went wrong, coarsely. Also written (snake_case) into the status file as `error_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad configuration or command-line values (bad URL, unreadable CA bundle, empty tag list...).
    Config,
    /// Connection refused/reset, DNS failure, body cut off mid-transfer.
    Network,
    /// The connect or total time limit fired.
    Timeout,
    /// TLS failure, most often a certificate that does not chain to a trusted root.
    Tls,
    /// The server answered with a non-success HTTP status.
    Http,
    /// The body is larger than the configured cap.
    TooLarge,
    /// The download details page has no usable link to the service-tags file.
    Discovery,
    /// The body is not a service-tags document at all (an HTML page, for example).
    WrongContent,
    /// The body looks like JSON but does not parse as a service-tags document.
    Parse,
    /// The file (or the saved state) is for another cloud.
    WrongCloud,
    /// A configured tag is not in the file.
    MissingTag,
    /// A prefix is not a valid CIDR network.
    InvalidPrefix,
    /// The configured tags hold no prefixes.
    Empty,
    /// The file fails a plausibility limit: a prefix too wide or in a special-use range, too many
    /// prefixes or additions, a changeNumber jump (see [`crate::Limits`]).
    Implausible,
    /// The file's SHA-256 is not the pinned one.
    Checksum,
    /// Reading or writing the state directory failed, or the saved state is unreadable.
    State,
    /// Another refresh holds the state directory's lock.
    Locked,
    /// The caller's apply hook refused the new list.
    Apply,
}

impl ErrorKind {
    /// The snake_case name used in the status file.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Http => "http",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Discovery => "discovery",
            ErrorKind::WrongContent => "wrong_content",
            ErrorKind::Parse => "parse",
            ErrorKind::WrongCloud => "wrong_cloud",
            ErrorKind::MissingTag => "missing_tag",
            ErrorKind::InvalidPrefix => "invalid_prefix",
            ErrorKind::Empty => "empty",
            ErrorKind::Implausible => "implausible",
            ErrorKind::Checksum => "checksum",
            ErrorKind::State => "state",
            ErrorKind::Locked => "locked",
            ErrorKind::Apply => "apply",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The feed's error: a kind plus a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// HTTP status, when the error is an HTTP answer.
    status: Option<u16>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), status: None }
    }

    #[cfg(feature = "fetch")]
    pub(crate) fn http(status: u16, message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Http, message: message.into(), status: Some(status) }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status code for [`ErrorKind::Http`] errors.
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }

    /// The same error with `context` put in front of the message.
    #[cfg(feature = "fetch")]
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn state_err(what: impl fmt::Display, e: impl fmt::Display) -> Error {
    Error::new(ErrorKind::State, format!("{what}: {e}"))
}
