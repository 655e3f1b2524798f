//! The system edges that every part of vorstream.firewall shares, each written once:
//! [`replace`] a file atomically and durably, take a [`Lock`], [`run`] a command, [`detach`]
//! a process, draw a [`random_token`].
//!
//! Everything here runs as root on managed hosts; nothing uses a predictable name in a shared
//! directory, and every failure names the path or program.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use tempfile::TempPath;

/// Replace `path` with `bytes` so that readers, and the file system after a crash, see the old
/// content or the new, never a mix or an empty file:
///
/// 1. an exclusive temporary file with an unpredictable name in the target's directory
///    (created with `O_EXCL`, so a planted file or symlink is never written through);
/// 2. the existing file's mode and owner, or `new_mode` (and root's umask-free mode) for a new one;
/// 3. the data flushed (`fsync`), renamed over `path`, and the directory flushed.
///
/// The directory is created (0755) when missing. A file that cannot be renamed over (a
/// bind-mounted file in a container) is rewritten in place and flushed, as ufw itself does.
pub fn replace(path: &Path, bytes: &[u8], new_mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let existing = match fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".vorfw-tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot create a temporary file in {}: {e}", dir.display()))?;
    let prepared = (|| -> std::io::Result<()> {
        let f = tmp.as_file_mut();
        f.write_all(bytes)?;
        match &existing {
            Some(m) => {
                std::os::unix::fs::fchown(&*f, Some(m.uid()), Some(m.gid()))?;
                f.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))?;
            }
            None => f.set_permissions(fs::Permissions::from_mode(new_mode))?,
        }
        f.sync_all()
    })();
    prepared.map_err(|e| format!("cannot write a temporary file in {}: {e}", dir.display()))?;
    match tmp.persist(path) {
        Ok(_) => File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| format!("{}: {e}", dir.display())),
        // EBUSY, EXDEV: a bind mount. The temporary file is removed when dropped.
        Err(e) if matches!(e.error.raw_os_error(), Some(16 | 18)) => {
            drop(e);
            let mut f = OpenOptions::new().write(true).truncate(true).open(path).map_err(err)?;
            f.write_all(bytes).and_then(|_| f.sync_all()).map_err(err)
        }
        Err(e) => Err(err(e.error)),
    }
}

/// A private temporary file holding `bytes` (mode 0600, an unpredictable name created with
/// `O_EXCL` in `$TMPDIR`), for programs that read their input from a file. Removed on drop.
pub fn private_file(bytes: &[u8]) -> Result<tempfile::TempPath, String> {
    let mut f = tempfile::Builder::new()
        .prefix("vorfw-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile()
        .map_err(|e| format!("cannot create a temporary file: {e}"))?;
    f.write_all(bytes).and_then(|_| f.as_file().sync_all()).map_err(|e| format!("{}: {e}", f.path().display()))?;
    Ok(f.into_temp_path())
}

/// A file's content, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

/// How to lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `flock(2)`, waiting for the holder.
    Wait,
    /// `flock(2)`, failing at once when held ([`Lock::take`] returns `None`).
    Try,
    /// A POSIX record lock on the whole file, waiting: what Python's `fcntl.lockf` takes
    /// (ufw's own lock).
    Record,
}

impl Lock {
    /// Lock `path` (created 0600 when missing, with its directory). `None`: held by another
    /// process and `kind` is [`LockKind::Try`].
    pub fn take(path: &Path, kind: LockKind) -> Result<Option<Lock>, String> {
        use rustix::fs::{fcntl_lock, flock, FlockOperation};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| format!("cannot open the lock {}: {e}", path.display()))?;
        loop {
            let r = match kind {
                LockKind::Wait => flock(&file, FlockOperation::LockExclusive),
                LockKind::Try => flock(&file, FlockOperation::NonBlockingLockExclusive),
                LockKind::Record => fcntl_lock(&file, FlockOperation::LockExclusive),
            };
            match r {
                Ok(()) => return Ok(Some(Lock { _file: file, path: path.to_path_buf() })),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) if kind == LockKind::Try => return Ok(None),
                Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
            }
        }
    }
}

/// What a command printed.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// How long a command may take before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A command to [`run`].
#[derive(Debug, Clone)]
pub struct Cmd<'a> {
    pub program: &'a Path,
    pub args: Vec<String>,
    pub stdin: Option<Stdin<'a>>,
    pub timeout: Duration,
}

/// A command's standard input.
#[derive(Debug, Clone)]
pub enum Stdin<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl<'a> Cmd<'a> {
    pub fn new(program: &'a (impl AsRef<Path> + ?Sized), args: &[&str]) -> Cmd<'a> {
        Cmd {
            program: program.as_ref(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
    pub fn stdin(mut self, s: Stdin<'a>) -> Self {
        self.stdin = Some(s);
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Run it; see [`run`].
    pub fn run(&self) -> Result<Output, String> {
        run(self)
    }
}

/// Run a command with `LC_ALL=C` (so its messages are the English ones callers match), its
/// output captured, killed after its timeout. A non-zero exit is an error naming the program,
/// its arguments and what it printed (stderr, else stdout).
pub fn run(c: &Cmd) -> Result<Output, String> {
    let shown = || {
        let mut s = c.program.display().to_string();
        for a in &c.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    };
    let mut cmd = Command::new(c.program);
    cmd.args(&c.args).env("LC_ALL", "C").stdout(Stdio::piped()).stderr(Stdio::piped());
    match &c.stdin {
        None => cmd.stdin(Stdio::null()),
        Some(Stdin::Bytes(_)) => cmd.stdin(Stdio::piped()),
        Some(Stdin::File(p)) => cmd.stdin(File::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", c.program.display()))?;
    let feeder = match (&c.stdin, child.stdin.take()) {
        (Some(Stdin::Bytes(b)), Some(mut pipe)) => {
            let b = b.to_vec();
            Some(std::thread::spawn(move || pipe.write_all(&b)))
        }
        _ => None,
    };
    let pump = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = pump(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = pump(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= c.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not finish within {} s and was stopped", shown(), c.timeout.as_secs()));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(25));
            }
            Err(e) => return Err(format!("{}: {e}", shown())),
        }
    };
    if let Some(f) = feeder {
        // A program that exits without reading its input is judged by its exit status.
        let _ = f.join();
    }
    let text =
        |h: std::thread::JoinHandle<Vec<u8>>| String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned();
    let o = Output { stdout: text(out), stderr: text(err) };
    if status.success() {
        return Ok(o);
    }
    let said = if o.stderr.trim().is_empty() { o.stdout.trim() } else { o.stderr.trim() };
    Err(format!("{} exited with {status}: {said}", shown()))
}

/// Start `program args` as a process of its own: a new session (no controlling terminal, out
/// of the caller's process group, so neither a hang-up nor a kill of the caller's group reaches
/// it), standard streams on /dev/null (so nobody waits for its output). Returns its pid; it is
/// never waited for (when the caller exits, init reaps it).
pub fn detach(program: &Path, args: &[&std::ffi::OsStr]) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).env("LC_ALL", "C");
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| rustix::process::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    cmd.spawn().map(|c| c.id()).map_err(|e| format!("cannot start {}: {e}", program.display()))
}

/// 128 random bits from the kernel, as 32 hex digits.
pub fn random_token() -> Result<String, String> {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        match rustix::rand::getrandom(&mut b[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("getrandom: {e}")),
        }
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new().prefix(&format!("vorfw-sys-{name}")).tempdir().unwrap()
    }

    #[test]
    fn replace_keeps_mode_creates_new_files_with_the_given_mode_and_leaves_no_temporary() {
        let d = dir("replace");
        let p = d.path().join("sub").join("f.conf");
        replace(&p, b"one\n", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one\n");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o644);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        replace(&p, b"two\n", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two\n");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["f.conf"]);
    }

    #[test]
    fn replace_never_writes_through_a_planted_symlink() {
        let d = dir("symlink");
        let victim = d.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let p = d.path().join("target");
        // Whatever temporary name an attacker guesses, the target itself is renamed over.
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        replace(&p, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert!(a.len() == 32 && a.chars().all(|c| c.is_ascii_hexdigit()) && a != b, "{a} {b}");
    }

    #[test]
    fn a_detached_process_has_its_own_session_and_no_output() {
        let d = dir("detach");
        let out = d.path().join("out");
        let script = format!("ps -o sid= -p $$ > {0}.tmp; mv {0}.tmp {0}", out.display());
        let pid = detach(Path::new("/bin/sh"), &["-c".as_ref(), script.as_ref()]).unwrap();
        let t0 = Instant::now();
        while !out.exists() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let sid: u32 = fs::read_to_string(&out).unwrap().trim().parse().unwrap();
        assert_eq!(sid, pid, "the child leads a session of its own");
    }

    #[test]
    fn try_locks_exclude_each_other_and_release_on_drop() {
        let d = dir("lock");
        let p = d.path().join("lock");
        let first = Lock::take(&p, LockKind::Try).unwrap().unwrap();
        assert!(Lock::take(&p, LockKind::Try).unwrap().is_none());
        drop(first);
        assert!(Lock::take(&p, LockKind::Try).unwrap().is_some());
    }

    #[test]
    fn commands_get_c_locale_input_and_a_timeout() {
        let sh = Path::new("/bin/sh");
        let o = Cmd::new(sh, &["-c", "printf %s \"$LC_ALL\"; cat"]).stdin(Stdin::Bytes(b"-in")).run().unwrap();
        assert_eq!(o.stdout, "C-in");
        let e = Cmd::new(sh, &["-c", "echo bad >&2; exit 3"]).run().unwrap_err();
        assert_eq!(e, "/bin/sh -c echo bad >&2; exit 3 exited with exit status: 3: bad");
        let e = Cmd::new(sh, &["-c", "sleep 5"]).timeout(Duration::from_millis(100)).run().unwrap_err();
        assert!(e.contains("did not finish within 0 s"), "{e}");
        assert!(Cmd::new(Path::new("/nonexistent/x"), &[]).run().unwrap_err().starts_with("cannot run /nonexistent/x"));
    }
}
