//! One write per commit to the SQLite writer's log.
//!
//! SQLite appends a commit to the write-ahead log one frame at a time, each
//! frame in two `pwrite` calls (its 24-byte header, then the page): about 50
//! calls for a batch of the benchmark's requests, a sixth of Inlet's CPU
//! under load and all of it on the writer's path. This VFS, used by the
//! writer's connection only, wraps the platform's. Its log file gathers the
//! appended frames in memory and writes them in one call when the frame that
//! ends the commit is complete: before SQLite publishes the commit to other
//! connections (in shared memory, after the write returns) and before the
//! writer flushes the log (`log_flush`). A failed write fails the commit.
//!
//! Every other access to the log writes what is gathered first: a write
//! elsewhere in the file (a frame rewritten within a transaction, checksums
//! rewritten after it, the log's header when it starts over), reads, size,
//! truncation, sync, locks, file controls and close. Only writes that continue
//! the previous write are gathered; so a rewrite, which lands before the end,
//! never waits in memory past the commit. Other files (the database, its
//! shared memory) are the platform's own, untouched.

use rusqlite::ffi;
use std::ffi::{CStr, c_int, c_void};
use std::sync::LazyLock;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub(super) const NAME: &CStr = c"inlet-log-append";

/// The most the platform's VFS writes in one call (on Unix it masks the
/// length to 17 bits, and calls a shorter write a full disk): gathered bytes
/// are written before they would exceed it. 31 frames of 4 KiB pages.
const GATHER_LIMIT: usize = 0x1ffff;

/// Size of a frame header; bytes 4..8 of a commit frame's hold the database
/// size, zero in every other frame.
const FRAME_HEADER: usize = 24;

/// Registers the VFS (once; later calls return the first result).
pub(super) fn register() -> Result<(), c_int> {
    REGISTERED.map(drop)
}

/// The platform's VFS (a `*mut sqlite3_vfs`), once this VFS is registered
/// over it.
static REGISTERED: LazyLock<Result<usize, c_int>> = LazyLock::new(|| {
    // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, which lives as
    // long as the process; the new VFS is leaked, so it does too, as
    // sqlite3_vfs_register requires.
    unsafe {
        let platform = ffi::sqlite3_vfs_find(std::ptr::null());
        if platform.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        // The platform's own methods, called with this VFS, see the same
        // pAppData and mxPathname: only the name, the file size and xOpen
        // differ.
        let mut vfs = *platform;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = NAME.as_ptr();
        vfs.szOsFile = (PLATFORM_FILE_AT + (*platform).szOsFile as usize) as c_int;
        vfs.xOpen = Some(open);
        match ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0) {
            ffi::SQLITE_OK => Ok(platform as usize),
            code => Err(code),
        }
    }
});

fn platform() -> *mut ffi::sqlite3_vfs {
    // SQLite calls `open` only on a registered VFS.
    REGISTERED.expect("registered before use") as *mut ffi::sqlite3_vfs
}

/// The log file: SQLite's file object, then the platform's file object at
/// `PLATFORM_FILE_AT` in the same allocation.
#[repr(C)]
struct LogFile {
    base: ffi::sqlite3_file,
    platform: *mut ffi::sqlite3_file,
    gathered: Vec<u8>,
    /// Offset of `gathered[0]` in the file.
    gathered_at: i64,
    /// Where the last write ended: a write starting here continues it.
    written_to: i64,
    /// The last write was a commit frame's header: the next one, its page,
    /// completes the commit.
    commit_header: bool,
    /// Writes made to the platform's file (for tests).
    platform_writes: u64,
}

const PLATFORM_FILE_AT: usize = std::mem::size_of::<LogFile>().next_multiple_of(16);

static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 1: the log needs neither shared memory nor memory maps (SQLite
    // uses both on the database file only).
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite hands over `szOsFile` bytes at `file`, which hold a
    // LogFile and the platform's file object after it; everything else is
    // passed through as SQLite gave it.
    unsafe {
        let platform_open = (*platform()).xOpen.expect("a VFS opens files");
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return platform_open(platform(), name, file, flags, out_flags);
        }
        (*file).pMethods = std::ptr::null();
        let platform_file = file.cast::<u8>().add(PLATFORM_FILE_AT).cast::<ffi::sqlite3_file>();
        let code = platform_open(platform(), name, platform_file, flags, out_flags);
        if code != ffi::SQLITE_OK {
            return code;
        }
        file.cast::<LogFile>().write(LogFile {
            base: ffi::sqlite3_file { pMethods: &LOG_METHODS },
            platform: platform_file,
            gathered: Vec::new(),
            gathered_at: 0,
            written_to: -1,
            commit_header: false,
            platform_writes: 0,
        });
        ffi::SQLITE_OK
    }
}

impl LogFile {
    /// # Safety
    /// `file` is a log file opened by `open` and not yet closed.
    unsafe fn of<'a>(file: *mut ffi::sqlite3_file) -> &'a mut LogFile {
        unsafe { &mut *file.cast::<LogFile>() }
    }

    fn platform_methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the platform's file is open while this one is.
        unsafe { &*(*self.platform).pMethods }
    }

    fn write_through(&mut self, data: *const c_void, amount: c_int, offset: i64) -> c_int {
        let write = self.platform_methods().xWrite.expect("files can be written");
        self.platform_writes += 1;
        // SAFETY: `data` holds `amount` bytes (SQLite's, or `gathered`).
        let code = unsafe { write(self.platform, data, amount, offset) };
        if code != ffi::SQLITE_OK {
            // Nothing continues a failed write.
            self.written_to = -1;
        }
        code
    }

    /// Writes what is gathered. On failure it is dropped: SQLite fails the
    /// commit and writes its frames again in the next one.
    fn write_gathered(&mut self) -> c_int {
        if self.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let gathered = std::mem::take(&mut self.gathered);
        let code = self.write_through(gathered.as_ptr().cast(), gathered.len() as c_int, self.gathered_at);
        self.gathered = gathered;
        self.gathered.clear();
        code
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
        // A commit frame's header may be written through (when it does not
        // continue the last write) and its page gathered: the page ends the
        // commit either way.
        let ends_commit = self.commit_header;
        self.commit_header = data.len() == FRAME_HEADER && data[4..8] != [0; 4];
        let continues = offset == self.written_to;
        self.written_to = offset + data.len() as i64;
        if !continues {
            let code = self.write_gathered();
            if code != ffi::SQLITE_OK {
                return code;
            }
            return self.write_through(data.as_ptr().cast(), data.len() as c_int, offset);
        }
        if self.gathered.len() + data.len() > GATHER_LIMIT {
            let code = self.write_gathered();
            if code != ffi::SQLITE_OK {
                return code;
            }
        }
        if self.gathered.is_empty() {
            self.gathered_at = offset;
        }
        self.gathered.extend_from_slice(data);
        if ends_commit {
            return self.write_gathered();
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), amount as usize) };
    unsafe { LogFile::of(file) }.write(data, offset)
}

/// Defines a method that writes what is gathered, then calls the platform's.
macro_rules! after_gathered {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            let log = unsafe { LogFile::of(file) };
            let code = log.write_gathered();
            if code != ffi::SQLITE_OK {
                return code;
            }
            let method = log.platform_methods().$method.expect("version 1 methods exist");
            // SAFETY: the arguments are SQLite's, for the platform's file.
            unsafe { method(log.platform $(, $arg)*) }
        }
    };
}

after_gathered!(read, xRead, (data: *mut c_void, amount: c_int, offset: i64));
after_gathered!(truncate, xTruncate, (size: i64));
after_gathered!(sync, xSync, (flags: c_int));
after_gathered!(file_size, xFileSize, (size: *mut i64));
after_gathered!(lock, xLock, (level: c_int));
after_gathered!(unlock, xUnlock, (level: c_int));
after_gathered!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
after_gathered!(file_control, xFileControl, (op: c_int, arg: *mut c_void));

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let log = unsafe { LogFile::of(file) };
    let method = log.platform_methods().xSectorSize.expect("version 1 methods exist");
    unsafe { method(log.platform) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let log = unsafe { LogFile::of(file) };
    let method = log
        .platform_methods()
        .xDeviceCharacteristics
        .expect("version 1 methods exist");
    unsafe { method(log.platform) }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let log = unsafe { LogFile::of(file) };
    let written = log.write_gathered();
    let close = log.platform_methods().xClose.expect("files can be closed");
    // SAFETY: the platform's file is closed once, here; the LogFile is
    // dropped in place and SQLite frees the memory.
    let closed = unsafe { close(log.platform) };
    unsafe { std::ptr::drop_in_place(file.cast::<LogFile>()) };
    if written != ffi::SQLITE_OK { written } else { closed }
}

/// Writes made to the platform's log file by the connection's log so far.
#[cfg(test)]
pub(super) fn platform_writes(conn: &rusqlite::Connection) -> u64 {
    let file = super::sqlite::file_object(conn, ffi::SQLITE_FCNTL_JOURNAL_POINTER).unwrap();
    // SAFETY: a log file object of a connection on this VFS in WAL mode is a
    // LogFile (checked by its methods).
    unsafe {
        assert!(
            std::ptr::eq((*file).pMethods, &LOG_METHODS),
            "the log is not this VFS's"
        );
        LogFile::of(file).platform_writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};
    use std::path::Path;

    fn writer(file: &Path, cache_pages: i64) -> Connection {
        register().unwrap();
        let conn = Connection::open_with_flags_and_vfs(file, OpenFlags::default(), NAME).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        // Log restarts write its header: kept out of the counts below.
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.pragma_update(None, "cache_size", cache_pages).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t (v);")
            .unwrap();
        conn
    }

    fn insert(conn: &mut Connection, from: i64, rows: i64) {
        let tx = conn.transaction().unwrap();
        for i in from..from + rows {
            tx.execute(
                "INSERT INTO t (id, v) VALUES (?1, ?2)",
                (i, format!("{i:>8}").repeat(40)),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    /// Rows and the sum of their ids, as a connection on the platform's VFS
    /// reads them, after checking the database.
    fn read(file: &Path) -> (i64, i64) {
        let conn = Connection::open(file).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        conn.query_row("SELECT count(*), coalesce(sum(id), 0) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    /// What a crash right now would leave: the database and its log as they
    /// are in the files, read by a new connection that replays the log and
    /// checks every frame's checksum.
    fn read_after_crash(file: &Path) -> (i64, i64) {
        let copy = tempfile::tempdir().unwrap();
        let copied = copy.path().join("copy.db");
        std::fs::copy(file, &copied).unwrap();
        std::fs::copy(file.with_extension("db-wal"), copy.path().join("copy.db-wal")).unwrap();
        read(&copied)
    }

    fn sum(rows: i64) -> i64 {
        rows * (rows - 1) / 2
    }

    #[test]
    fn a_commit_reaches_the_log_in_one_write_that_other_connections_and_a_crash_see() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let mut conn = writer(&file, 2000);
        insert(&mut conn, 0, 1);
        for round in 0..20 {
            let before = platform_writes(&conn);
            insert(&mut conn, 1 + round * 25, 25);
            assert_eq!(platform_writes(&conn) - before, 1, "one write for the commit's frames");
            let rows = 1 + (round + 1) * 25;
            assert_eq!(read(&file), (rows, sum(rows)));
        }
        assert_eq!(read_after_crash(&file), (501, sum(501)));
    }

    #[test]
    fn a_transaction_larger_than_the_cache_is_whole_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        // Ten pages of cache: the transaction spills frames to the log before
        // its commit, rewrites some of them, then their checksums.
        let mut conn = writer(&file, 10);
        let tx = conn.transaction().unwrap();
        for i in 0..3000 {
            tx.execute(
                "INSERT INTO t (id, v) VALUES (?1, ?2)",
                (i, format!("{i:>8}").repeat(40)),
            )
            .unwrap();
        }
        tx.execute("UPDATE t SET v = 'x' || v WHERE id % 7 = 0", []).unwrap();
        tx.commit().unwrap();
        assert!(platform_writes(&conn) > 1, "the gathered frames were written in parts");
        assert_eq!(read(&file), (3000, sum(3000)));
        assert_eq!(read_after_crash(&file), (3000, sum(3000)));
        insert(&mut conn, 3000, 10);
        assert_eq!(read_after_crash(&file), (3010, sum(3010)));
    }
}
