//! One error type for the crate: a kind a caller (a status file, a test, a monitoring rule) can
//! match on, and a message that names the value at fault in words an operator can act on.

use std::fmt;

/// What went wrong, coarsely. Written (snake_case) into status files as `error_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A provider configuration or policy value is invalid.
    Config,
    /// A document is larger than its cap (refused before parsing).
    TooLarge,
    /// The body is not the expected kind of document at all (empty, HTML, not a JSON object).
    WrongContent,
    /// The body is JSON but not of the expected shape.
    Parse,
    /// The discovery document's `issuer` is not exactly the configured issuer.
    IssuerMismatch,
    /// A URL is not `https` (a field of the discovery document, a redirect).
    Insecure,
    /// A host name is not a valid DNS name, is an IP literal where none is allowed, or a URL
    /// carries user information.
    InvalidHost,
    /// The document names more hosts than allowed.
    TooManyHosts,
    /// The configured Okta cell is not in the file.
    UnknownCell,
    /// A prefix is not a CIDR network.
    InvalidPrefix,
    /// The list is empty.
    Empty,
    /// A plausibility limit: a prefix too wide or special-use, too many prefixes or addresses.
    Implausible,
    /// A redirect the fetcher must not follow.
    Redirect,
    /// Fetching: connection refused or reset, a body cut off (the fetch shell's kinds).
    Network,
    /// Fetching: a time limit fired.
    Timeout,
    /// Fetching: a TLS failure (most often a certificate no trusted CA signed).
    Tls,
    /// Fetching: a non-success HTTP status.
    Http,
    /// Reading or writing a state file failed, or it is unreadable.
    State,
}

impl ErrorKind {
    /// A failure to fetch (the network, TLS, an HTTP status, a time limit), not a refusal of
    /// what was fetched.
    pub fn is_transport(self) -> bool {
        matches!(self, ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Tls | ErrorKind::Http)
    }

    /// The snake_case name used in status files.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::WrongContent => "wrong_content",
            ErrorKind::Parse => "parse",
            ErrorKind::IssuerMismatch => "issuer_mismatch",
            ErrorKind::Insecure => "insecure",
            ErrorKind::InvalidHost => "invalid_host",
            ErrorKind::TooManyHosts => "too_many_hosts",
            ErrorKind::UnknownCell => "unknown_cell",
            ErrorKind::InvalidPrefix => "invalid_prefix",
            ErrorKind::Empty => "empty",
            ErrorKind::Implausible => "implausible",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Http => "http",
            ErrorKind::State => "state",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind plus a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front of the message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
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

/// The Entra feed's plausibility checks and HTTPS client report in its own error type; the kinds
/// they use map one to one.
impl From<vorfw_entra::Error> for Error {
    fn from(e: vorfw_entra::Error) -> Self {
        use vorfw_entra::ErrorKind as E;
        let kind = match e.kind() {
            E::Implausible => ErrorKind::Implausible,
            E::InvalidPrefix => ErrorKind::InvalidPrefix,
            E::Empty => ErrorKind::Empty,
            E::TooLarge => ErrorKind::TooLarge,
            E::WrongContent => ErrorKind::WrongContent,
            E::Parse => ErrorKind::Parse,
            E::Network => ErrorKind::Network,
            E::Timeout => ErrorKind::Timeout,
            E::Tls => ErrorKind::Tls,
            E::Http => ErrorKind::Http,
            E::State | E::Locked => ErrorKind::State,
            _ => ErrorKind::Config,
        };
        Error::new(kind, e.message())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
