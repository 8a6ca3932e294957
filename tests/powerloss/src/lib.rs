//! `lazy`: a SQLite VFS that models power loss the way LazyFS does — every
//! write reaches the file at once (so reads see it), but only what was
//! fsynced survives a power cut. It wraps the default `unix` VFS; for each
//! file it keeps the size at the last `xSync` and an undo log of the bytes
//! every later write or truncate replaced. [`arm`] picks the I/O call at
//! which the power fails: just before that call runs, a *crash image* of
//! every file is written to a directory — each file's current bytes with
//! its undo log applied in reverse and cut to its last synced size, that is
//! exactly what a disk that lost its unsynced writes would hold. The
//! process goes on; the test then knows which operations had returned
//! before the cut and checks that the image holds all of them.
//!
//! What it does not model: directory entries (a file created and never
//! synced is imaged as empty, not as missing), torn or reordered sector
//! writes, and the shared-memory WAL index (`-shm`, which SQLite rebuilds
//! after a crash and is left out of the image).

use rusqlite::ffi;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What the VFS knows about one file since its last sync.
struct Tracked {
    synced_size: u64,
    /// (offset, bytes that were there before a write or truncate), oldest first.
    undo: Vec<(u64, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Tracked>,
    /// Counts xWrite, xTruncate and xSync calls.
    calls: u64,
    cut_at: Option<u64>,
    image_dir: Option<PathBuf>,
    image_taken: bool,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(State::default))
}

/// Our file object: SQLite's header first, then the wrapped unix file.
#[repr(C)]
struct LazyFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The file's path (None for temporary files, which are not tracked).
    path: *mut String,
}

/// The unix VFS we delegate to (found once, at registration).
static UNIX: Mutex<usize> = Mutex::new(0);

fn unix() -> *mut ffi::sqlite3_vfs {
    *UNIX.lock().unwrap_or_else(|p| p.into_inner()) as *mut ffi::sqlite3_vfs
}

/// Registers `lazy` as the process's default VFS (idempotent).
pub fn register() {
    let mut u = UNIX.lock().unwrap_or_else(|p| p.into_inner());
    if *u != 0 {
        return;
    }
    // SAFETY: sqlite3_vfs_find returns a pointer to a static VFS object (or
    // null); we copy it into a leaked, never-freed struct that SQLite keeps.
    unsafe {
        let base = ffi::sqlite3_vfs_find(c"unix".as_ptr());
        assert!(!base.is_null(), "no unix VFS");
        *u = base as usize;
        let mut vfs: ffi::sqlite3_vfs = *base;
        vfs.zName = c"lazy".as_ptr();
        vfs.szOsFile = std::mem::size_of::<LazyFile>() as c_int;
        vfs.xOpen = Some(x_open);
        vfs.pNext = std::ptr::null_mut();
        let leaked = Box::into_raw(Box::new(vfs));
        let rc = ffi::sqlite3_vfs_register(leaked, 1);
        assert_eq!(rc, ffi::SQLITE_OK, "register the lazy VFS");
    }
}

/// Arms a power cut at I/O call number `at` (1 = the next one); the crash
/// image goes to `image_dir`. Resets the counter and the tracked files.
pub fn arm(at: u64, image_dir: &Path) {
    with_state(|s| {
        *s = State {
            cut_at: Some(at),
            image_dir: Some(image_dir.to_path_buf()),
            ..State::default()
        };
    });
}

/// Whether the crash image has been taken.
pub fn image_taken() -> bool {
    with_state(|s| s.image_taken)
}

/// Takes the crash image now, if it was not taken yet (a cut after the last
/// operation). Returns the number of I/O calls made.
pub fn cut_now() -> u64 {
    with_state(|s| {
        if !s.image_taken {
            take_image(s);
        }
        s.calls
    })
}

fn take_image(s: &mut State) {
    s.image_taken = true;
    let Some(dir) = s.image_dir.clone() else {
        return;
    };
    for (path, t) in &s.files {
        let mut bytes = std::fs::read(path).unwrap_or_default();
        for (offset, old) in t.undo.iter().rev() {
            let (o, end) = (*offset as usize, *offset as usize + old.len());
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[o..end].copy_from_slice(old);
        }
        bytes.truncate(t.synced_size as usize);
        let name = Path::new(path).file_name().expect("a file name");
        std::fs::write(dir.join(name), bytes).expect("write the crash image");
    }
}

/// Counts one I/O call; takes the image first when it is the armed one.
fn tick(s: &mut State) {
    s.calls += 1;
    if s.cut_at == Some(s.calls) && !s.image_taken {
        take_image(s);
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

// SAFETY (all callbacks below): SQLite calls them with the `sqlite3_file`
// it allocated with our `szOsFile`, which `x_open` initialised as a
// `LazyFile` whose `real` points to a live unix file; each call is
// forwarded to that file's own methods with the same arguments.

unsafe fn real(
    f: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    unsafe {
        let real = (*(f as *mut LazyFile)).real;
        (real, &*(*real).pMethods)
    }
}

unsafe fn path_of(f: *mut ffi::sqlite3_file) -> Option<String> {
    unsafe {
        let p = (*(f as *mut LazyFile)).path;
        (!p.is_null()).then(|| (*p).clone())
    }
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let base = unix();
        let size = (*base).szOsFile as usize;
        let mem = ffi::sqlite3_malloc64(size as u64) as *mut ffi::sqlite3_file;
        if mem.is_null() {
            return ffi::SQLITE_NOMEM;
        }
        std::ptr::write_bytes(mem as *mut u8, 0, size);
        let xopen = (*base).xOpen.expect("unix xOpen");
        let rc = xopen(base, name, mem, flags, out_flags);
        let lazy = file as *mut LazyFile;
        if rc != ffi::SQLITE_OK {
            ffi::sqlite3_free(mem as *mut c_void);
            (*lazy).base.pMethods = std::ptr::null();
            return rc;
        }
        let path = if name.is_null() {
            std::ptr::null_mut()
        } else {
            let p = CStr::from_ptr(name).to_string_lossy().into_owned();
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            with_state(|s| {
                s.files.entry(p.clone()).or_insert(Tracked {
                    synced_size: size,
                    undo: Vec::new(),
                });
            });
            Box::into_raw(Box::new(p))
        };
        (*lazy).real = mem;
        (*lazy).path = path;
        (*lazy).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let (r, m) = real(f);
        let rc = m.xClose.map_or(ffi::SQLITE_OK, |x| x(r));
        ffi::sqlite3_free(r as *mut c_void);
        let lazy = f as *mut LazyFile;
        if !(*lazy).path.is_null() {
            drop(Box::from_raw((*lazy).path));
            (*lazy).path = std::ptr::null_mut();
        }
        rc
    }
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: i64,
) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xRead.expect("xRead")(r, buf, n, off)
    }
}

/// The bytes at [off, off + n) as the file holds them now (short at its end).
unsafe fn old_bytes(f: *mut ffi::sqlite3_file, off: u64, n: u64) -> Vec<u8> {
    unsafe {
        let (r, m) = real(f);
        let mut size: i64 = 0;
        m.xFileSize.expect("xFileSize")(r, &mut size);
        let end = (off + n).min(size.max(0) as u64);
        if end <= off {
            return Vec::new();
        }
        let mut old = vec![0u8; (end - off) as usize];
        m.xRead.expect("xRead")(
            r,
            old.as_mut_ptr() as *mut c_void,
            old.len() as c_int,
            off as i64,
        );
        old
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: i64,
) -> c_int {
    unsafe {
        if let Some(p) = path_of(f) {
            let old = old_bytes(f, off as u64, n as u64);
            with_state(|s| {
                tick(s);
                if let Some(t) = s.files.get_mut(&p) {
                    t.undo.push((off as u64, old));
                }
            });
        }
        let (r, m) = real(f);
        m.xWrite.expect("xWrite")(r, buf, n, off)
    }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        if let Some(p) = path_of(f) {
            let old = old_bytes(f, size as u64, u64::MAX / 4);
            with_state(|s| {
                tick(s);
                if let Some(t) = s.files.get_mut(&p) {
                    t.undo.push((size as u64, old));
                }
            });
        }
        let (r, m) = real(f);
        m.xTruncate.expect("xTruncate")(r, size)
    }
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        let p = path_of(f);
        if p.is_some() {
            with_state(tick);
        }
        let (r, m) = real(f);
        let rc = m.xSync.expect("xSync")(r, flags);
        if rc == ffi::SQLITE_OK
            && let Some(p) = p
        {
            let mut size: i64 = 0;
            m.xFileSize.expect("xFileSize")(r, &mut size);
            with_state(|s| {
                if let Some(t) = s.files.get_mut(&p) {
                    t.synced_size = size.max(0) as u64;
                    t.undo.clear();
                }
            });
        }
        rc
    }
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xFileSize.expect("xFileSize")(r, out)
    }
}

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, l: c_int) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xLock.expect("xLock")(r, l)
    }
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, l: c_int) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xUnlock.expect("xUnlock")(r, l)
    }
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xCheckReservedLock.expect("xCheckReservedLock")(r, out)
    }
}

unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xFileControl.expect("xFileControl")(r, op, arg)
    }
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xSectorSize.expect("xSectorSize")(r)
    }
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xDeviceCharacteristics.expect("xDeviceCharacteristics")(r)
    }
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    pg: c_int,
    pgsz: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xShmMap.expect("xShmMap")(r, pg, pgsz, extend, out)
    }
}

unsafe extern "C" fn x_shm_lock(
    f: *mut ffi::sqlite3_file,
    off: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xShmLock.expect("xShmLock")(r, off, n, flags)
    }
}

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    unsafe {
        let (r, m) = real(f);
        m.xShmBarrier.expect("xShmBarrier")(r)
    }
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xShmUnmap.expect("xShmUnmap")(r, delete)
    }
}

unsafe extern "C" fn x_fetch(
    f: *mut ffi::sqlite3_file,
    off: i64,
    n: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xFetch.expect("xFetch")(r, off, n, out)
    }
}

unsafe extern "C" fn x_unfetch(f: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    unsafe {
        let (r, m) = real(f);
        m.xUnfetch.expect("xUnfetch")(r, off, p)
    }
}
