//! A hand-written binding of the few libpcap calls sockscope makes, loaded with `dlopen` on
//! first use instead of linked at build time.
//!
//! WHY not the `pcap` crate: it links libpcap, so every run of the binary (`--version`,
//! `summary`, `sockets`) made the dynamic loader map libpcap.so.0.8 and its chain (libdbus,
//! libsystemd, libgcrypt, liblzma, libzstd, liblz4, libcap, libgpg-error) before `main`. Measured
//! with `perf stat`: an empty C `main` linked with libpcap takes 2.5 ms against 0.54 ms without,
//! and `summary` (4.3 ms) lost to `ss -s` (3.3 ms) on that alone. Loaded here, only a capture
//! (live, `-r` of a classic pcap, `doctor --capture`) pays for it, and a host without libpcap
//! still runs every other command; a capture there fails with a message naming the package.
//!
//! `SOCKSCOPE_LIBPCAP=NAME_OR_PATH` loads that library instead of the usual names (a libpcap
//! built elsewhere; the tests point it at a name that does not exist to exercise the real
//! `dlopen` failure). It is ignored in secure-execution mode (a binary given capabilities with
//! `setcap`), where it would let any user load code into a privileged process.

use std::any::Any;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::{Arc, OnceLock, Weak};

/// The names tried in order: Debian's (libpcap0.8), the upstream soname, the dev symlink.
const NAMES: [&str; 3] = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];
/// Overrides [`NAMES`] (see the module comment).
pub const ENV_OVERRIDE: &str = "SOCKSCOPE_LIBPCAP";

const ERRBUF_SIZE: usize = 256;
const PCAP_ERROR_PERM_DENIED: c_int = -8;
const PCAP_ERROR_BREAK: c_int = -2;
const PCAP_IF_LOOPBACK: u32 = 1;
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// libpcap could not be loaded: `why` says which library and what went wrong.
    #[error("libpcap not loaded ({why})")]
    NotLoaded { why: String },
    /// `pcap_activate` said PCAP_ERROR_PERM_DENIED (no CAP_NET_RAW).
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Pcap(String),
}

/// `struct pcap_pkthdr` (Linux layout).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PacketHeader {
    pub ts: libc::timeval,
    /// Bytes captured (the length of `data`).
    pub caplen: u32,
    /// Bytes on the wire.
    pub len: u32,
}

/// Asks the CPU for the four cache lines from 256 bytes past `data`: in a live capture's
/// ring, the next packets (a small frame takes ~170 bytes there). The kernel wrote them from
/// another CPU, and libpcap's first read of each packet's header, then ours of its bytes,
/// stalled on them one after another: with these hints the load of `scripts/bench-capture`
/// took ~6% less CPU (0.956 against 1.018 of tcpdump's, five runs each). A prefetch reads
/// nothing and cannot fault, so addresses past the end of the ring are harmless.
#[inline]
pub(super) fn prefetch_ahead(data: *const u8) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..4 {
        // SAFETY: a prefetch is a hint: it dereferences nothing.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                data.wrapping_add(256 + 64 * line) as *const i8,
            )
        };
    }
}

/// One packet, borrowed from libpcap's buffer until the next read.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub header: &'a PacketHeader,
    pub data: &'a [u8],
}

/// libpcap's counters for a live handle (`struct pcap_stat`).
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
}

/// A capture device as `pcap_findalldevs` lists it.
#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub loopback: bool,
}

/// How to open a live device (`pcap_create`, the `pcap_set_*` calls, `pcap_activate`).
#[derive(Debug, Clone, Copy)]
pub struct LiveOptions {
    pub snaplen: i32,
    pub promisc: bool,
    pub timeout_ms: i32,
    pub buffer_bytes: i32,
    pub immediate: bool,
}

#[repr(C)]
struct RawStat {
    ps_recv: c_uint,
    ps_drop: c_uint,
    ps_ifdrop: c_uint,
}

#[repr(C)]
struct RawIf {
    next: *mut RawIf,
    name: *mut c_char,
    description: *mut c_char,
    addresses: *mut c_void,
    flags: u32,
}

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

type PcapT = c_void;
type Handler = unsafe extern "C" fn(*mut u8, *const PacketHeader, *const u8);

/// The entry points, resolved once.
struct Lib {
    create: unsafe extern "C" fn(*const c_char, *mut c_char) -> *mut PcapT,
    set_snaplen: unsafe extern "C" fn(*mut PcapT, c_int) -> c_int,
    set_promisc: unsafe extern "C" fn(*mut PcapT, c_int) -> c_int,
    set_timeout: unsafe extern "C" fn(*mut PcapT, c_int) -> c_int,
    set_buffer_size: unsafe extern "C" fn(*mut PcapT, c_int) -> c_int,
    set_immediate_mode: unsafe extern "C" fn(*mut PcapT, c_int) -> c_int,
    activate: unsafe extern "C" fn(*mut PcapT) -> c_int,
    statustostr: unsafe extern "C" fn(c_int) -> *const c_char,
    open_offline: unsafe extern "C" fn(*const c_char, *mut c_char) -> *mut PcapT,
    open_dead: unsafe extern "C" fn(c_int, c_int) -> *mut PcapT,
    close: unsafe extern "C" fn(*mut PcapT),
    datalink: unsafe extern "C" fn(*mut PcapT) -> c_int,
    datalink_val_to_name: unsafe extern "C" fn(c_int) -> *const c_char,
    geterr: unsafe extern "C" fn(*mut PcapT) -> *mut c_char,
    compile: unsafe extern "C" fn(*mut PcapT, *mut BpfProgram, *const c_char, c_int, u32) -> c_int,
    setfilter: unsafe extern "C" fn(*mut PcapT, *mut BpfProgram) -> c_int,
    freecode: unsafe extern "C" fn(*mut BpfProgram),
    next_ex: unsafe extern "C" fn(*mut PcapT, *mut *mut PacketHeader, *mut *const u8) -> c_int,
    dispatch: unsafe extern "C" fn(*mut PcapT, c_int, Handler, *mut u8) -> c_int,
    breakloop: unsafe extern "C" fn(*mut PcapT),
    setnonblock: unsafe extern "C" fn(*mut PcapT, c_int, *mut c_char) -> c_int,
    stats: unsafe extern "C" fn(*mut PcapT, *mut RawStat) -> c_int,
    findalldevs: unsafe extern "C" fn(*mut *mut RawIf, *mut c_char) -> c_int,
    freealldevs: unsafe extern "C" fn(*mut RawIf),
}

/// The names to try: the override when allowed, else [`NAMES`].
fn candidates() -> Vec<String> {
    // SAFETY: getauxval only reads the auxiliary vector.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    match std::env::var(ENV_OVERRIDE) {
        Ok(name) if !secure && !name.is_empty() => vec![name],
        _ => NAMES.iter().map(|n| n.to_string()).collect(),
    }
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a thread-local message valid until the next dl call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

// Each transmute's target is the `Lib` field it initialises: that field's type is the annotation.
#[allow(clippy::missing_transmute_annotations)]
fn load() -> Result<Lib, Error> {
    let names = candidates();
    let mut first_error = None;
    let mut handle = None;
    for name in &names {
        let Ok(c) = CString::new(name.as_str()) else {
            continue;
        };
        // SAFETY: a plain dlopen; libpcap's initialisers are safe to run at any time.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            first_error.get_or_insert_with(dlerror);
        } else {
            handle = Some((h, name));
            break;
        }
    }
    let Some((h, name)) = handle else {
        let e = first_error.unwrap_or_default();
        let why = if e.contains("No such file") || e.is_empty() {
            format!("not found: {}", names.join(", "))
        } else {
            format!("cannot load {e}")
        };
        return Err(Error::NotLoaded { why });
    };
    macro_rules! sym {
        ($name:literal) => {{
            // SAFETY: the symbol is libpcap's function of this name, whose C signature the
            // field's type spells (pcap.h); the handle is never closed.
            let p = unsafe { libc::dlsym(h, concat!($name, "\0").as_ptr().cast()) };
            if p.is_null() {
                return Err(Error::NotLoaded {
                    why: format!("{name} lacks {}: libpcap 1.5 or later needed", $name),
                });
            }
            unsafe { std::mem::transmute::<*mut c_void, _>(p) }
        }};
    }
    Ok(Lib {
        create: sym!("pcap_create"),
        set_snaplen: sym!("pcap_set_snaplen"),
        set_promisc: sym!("pcap_set_promisc"),
        set_timeout: sym!("pcap_set_timeout"),
        set_buffer_size: sym!("pcap_set_buffer_size"),
        set_immediate_mode: sym!("pcap_set_immediate_mode"),
        activate: sym!("pcap_activate"),
        statustostr: sym!("pcap_statustostr"),
        open_offline: sym!("pcap_open_offline"),
        open_dead: sym!("pcap_open_dead"),
        close: sym!("pcap_close"),
        datalink: sym!("pcap_datalink"),
        datalink_val_to_name: sym!("pcap_datalink_val_to_name"),
        geterr: sym!("pcap_geterr"),
        compile: sym!("pcap_compile"),
        setfilter: sym!("pcap_setfilter"),
        freecode: sym!("pcap_freecode"),
        next_ex: sym!("pcap_next_ex"),
        dispatch: sym!("pcap_dispatch"),
        breakloop: sym!("pcap_breakloop"),
        setnonblock: sym!("pcap_setnonblock"),
        stats: sym!("pcap_stats"),
        findalldevs: sym!("pcap_findalldevs"),
        freealldevs: sym!("pcap_freealldevs"),
    })
}

/// libpcap, loaded on the first call (once per process; a failure is remembered too).
fn lib() -> Result<&'static Lib, Error> {
    static LIB: OnceLock<Result<Lib, Error>> = OnceLock::new();
    LIB.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Loads libpcap now, so a capture can fail before it starts a thread or enters a namespace.
pub fn ensure_loaded() -> Result<(), Error> {
    lib().map(|_| ())
}

fn string_at(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: libpcap hands out NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn errbuf_string(buf: &[c_char; ERRBUF_SIZE]) -> String {
    string_at(buf.as_ptr())
}

/// The name of a DLT_* link type (`EN10MB`), or None for one libpcap does not know.
pub fn link_name(dlt: i32) -> Option<String> {
    let lib = lib().ok()?;
    // SAFETY: returns a static string or null.
    let p = unsafe { (lib.datalink_val_to_name)(dlt) };
    (!p.is_null()).then(|| string_at(p))
}

/// Every capture device of the calling thread's network namespace.
pub fn devices() -> Result<Vec<Device>, Error> {
    let lib = lib()?;
    let mut err = [0 as c_char; ERRBUF_SIZE];
    let mut all: *mut RawIf = ptr::null_mut();
    // SAFETY: pcap_findalldevs fills `all` with a list freed below.
    if unsafe { (lib.findalldevs)(&mut all, err.as_mut_ptr()) } != 0 {
        return Err(Error::Pcap(errbuf_string(&err)));
    }
    let mut out = Vec::new();
    let mut d = all;
    while !d.is_null() {
        // SAFETY: a node of the list, alive until freealldevs.
        let dev = unsafe { &*d };
        out.push(Device {
            name: string_at(dev.name),
            loopback: dev.flags & PCAP_IF_LOOPBACK != 0,
        });
        d = dev.next;
    }
    // SAFETY: the list pcap_findalldevs made, freed once.
    unsafe { (lib.freealldevs)(all) };
    Ok(out)
}

/// The owned `pcap_t`: closed when the last reference goes.
struct Handle {
    ptr: NonNull<PcapT>,
    lib: &'static Lib,
}

// SAFETY: a pcap_t may move between threads; the only call made from another thread is
// pcap_breakloop, which libpcap documents as callable from another thread.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is open and this is its only close.
        unsafe { (self.lib.close)(self.ptr.as_ptr()) }
    }
}

/// An open libpcap handle: a live device, a file, or a dead one (for compiling filters).
pub struct Pcap {
    handle: Arc<Handle>,
}

/// Wakes a [`Pcap::dispatch`] blocked on another thread; a no-op once the handle is closed.
#[derive(Clone)]
pub struct BreakLoop {
    handle: Weak<Handle>,
}

impl BreakLoop {
    pub fn breakloop(&self) {
        // The upgrade keeps the handle open for the duration of the call.
        if let Some(h) = self.handle.upgrade() {
            // SAFETY: an open handle; pcap_breakloop is meant to be called from elsewhere.
            unsafe { (h.lib.breakloop)(h.ptr.as_ptr()) }
        }
    }
}

/// A compiled filter, freed on drop.
pub struct Program {
    prog: BpfProgram,
    lib: &'static Lib,
}

impl Program {
    /// The instructions, as the kernel's `SO_ATTACH_FILTER` takes them: libpcap's
    /// `struct bpf_insn` and the kernel's `struct sock_filter` are one layout.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        if self.prog.bf_insns.is_null() {
            return &[];
        }
        // SAFETY: bf_len instructions compiled by pcap_compile, alive as long as self.
        unsafe {
            std::slice::from_raw_parts(
                self.prog.bf_insns as *const libc::sock_filter,
                self.prog.bf_len as usize,
            )
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: compiled by pcap_compile, freed once.
        unsafe { (self.lib.freecode)(&mut self.prog) }
    }
}

impl Pcap {
    fn wrap(lib: &'static Lib, p: *mut PcapT, err: impl FnOnce() -> String) -> Result<Pcap, Error> {
        match NonNull::new(p) {
            Some(ptr) => Ok(Pcap {
                handle: Arc::new(Handle { ptr, lib }),
            }),
            None => Err(Error::Pcap(err())),
        }
    }

    fn raw(&self) -> *mut PcapT {
        self.handle.ptr.as_ptr()
    }

    fn lib(&self) -> &'static Lib {
        self.handle.lib
    }

    fn last_error(&self) -> String {
        // SAFETY: the handle's own error buffer, copied at once.
        string_at(unsafe { (self.lib().geterr)(self.raw()) })
    }

    /// Opens and activates a live device (Linux: a packet socket in the calling thread's
    /// network namespace).
    pub fn open_live(device: &str, o: &LiveOptions) -> Result<Pcap, Error> {
        let lib = lib()?;
        let name = CString::new(device)
            .map_err(|_| Error::Pcap(format!("device name {device:?} holds a NUL byte")))?;
        let mut err = [0 as c_char; ERRBUF_SIZE];
        // SAFETY: name and err outlive the call.
        let p = unsafe { (lib.create)(name.as_ptr(), err.as_mut_ptr()) };
        let cap = Pcap::wrap(lib, p, || errbuf_string(&err))?;
        let h = cap.raw();
        // SAFETY: an open, not yet activated handle: these only fail once activated.
        unsafe {
            (lib.set_snaplen)(h, o.snaplen);
            (lib.set_promisc)(h, o.promisc as c_int);
            (lib.set_timeout)(h, o.timeout_ms);
            (lib.set_buffer_size)(h, o.buffer_bytes);
            (lib.set_immediate_mode)(h, o.immediate as c_int);
        }
        // SAFETY: as above. Positive results are warnings (promiscuous mode unsupported…).
        let rc = unsafe { (lib.activate)(h) };
        if rc < 0 {
            let mut msg = cap.last_error();
            if msg.is_empty() {
                // SAFETY: returns a static string.
                msg = string_at(unsafe { (lib.statustostr)(rc) });
            }
            return Err(if rc == PCAP_ERROR_PERM_DENIED {
                Error::PermissionDenied(msg)
            } else {
                Error::Pcap(msg)
            });
        }
        Ok(cap)
    }

    /// Opens a capture file (classic pcap; libpcap also reads single-section pcapng).
    pub fn open_offline(path: &Path) -> Result<Pcap, Error> {
        use std::os::unix::ffi::OsStrExt;
        let lib = lib()?;
        let name = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::Pcap("the path holds a NUL byte".into()))?;
        let mut err = [0 as c_char; ERRBUF_SIZE];
        // SAFETY: name and err outlive the call.
        let p = unsafe { (lib.open_offline)(name.as_ptr(), err.as_mut_ptr()) };
        Pcap::wrap(lib, p, || errbuf_string(&err))
    }

    /// A handle bound to no device or file, for compiling filters of link type `dlt`.
    pub fn open_dead(dlt: i32) -> Result<Pcap, Error> {
        Pcap::open_dead_cut(dlt, 65_535)
    }

    /// [`Pcap::open_dead`] whose filters accept packets cut to `snaplen` bytes.
    pub fn open_dead_cut(dlt: i32, snaplen: i32) -> Result<Pcap, Error> {
        let lib = lib()?;
        // SAFETY: no pointers passed.
        let p = unsafe { (lib.open_dead)(dlt, snaplen) };
        Pcap::wrap(lib, p, || "out of memory".into())
    }

    /// The link type (DLT_*).
    pub fn datalink(&self) -> i32 {
        // SAFETY: an open handle.
        unsafe { (self.lib().datalink)(self.raw()) }
    }

    /// Compiles a filter expression for this handle's link type.
    pub fn compile(&self, expr: &str, optimize: bool) -> Result<Program, Error> {
        let c =
            CString::new(expr).map_err(|_| Error::Pcap("the filter holds a NUL byte".into()))?;
        let mut prog = BpfProgram {
            bf_len: 0,
            bf_insns: ptr::null_mut(),
        };
        // SAFETY: an open handle; prog is filled on success only.
        let rc = unsafe {
            (self.lib().compile)(
                self.raw(),
                &mut prog,
                c.as_ptr(),
                optimize as c_int,
                PCAP_NETMASK_UNKNOWN,
            )
        };
        if rc < 0 {
            return Err(Error::Pcap(self.last_error()));
        }
        Ok(Program {
            prog,
            lib: self.lib(),
        })
    }

    /// Compiles `expr` and attaches it (in the kernel, for a live socket).
    pub fn filter(&mut self, expr: &str, optimize: bool) -> Result<(), Error> {
        let mut p = self.compile(expr, optimize)?;
        // SAFETY: libpcap copies the program; ours is freed on drop.
        if unsafe { (self.lib().setfilter)(self.raw(), &mut p.prog) } < 0 {
            return Err(Error::Pcap(self.last_error()));
        }
        Ok(())
    }

    /// The next packet of a file: `Ok(None)` at its end.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Error> {
        let mut hdr: *mut PacketHeader = ptr::null_mut();
        let mut data: *const u8 = ptr::null();
        // SAFETY: an open handle; on 1 both pointers are valid until the next call, which
        // the borrow of self enforces.
        match unsafe { (self.lib().next_ex)(self.raw(), &mut hdr, &mut data) } {
            1 => unsafe {
                let header = &*hdr;
                Ok(Some(Packet {
                    header,
                    data: std::slice::from_raw_parts(data, header.caplen as usize),
                }))
            },
            -2 => Ok(None),
            0 => Err(Error::Pcap("timeout expired".into())),
            _ => Err(Error::Pcap(self.last_error())),
        }
    }

    /// Hands `f` the packets of one kernel block (or at most `count`); returns how many.
    /// A blocking handle waits for the block (or the buffer timeout, or a [`BreakLoop`]).
    /// A break is not an error: it answers `Ok(0)` (packets already handed to `f` before it
    /// are not counted then). `Some(0)` reads nothing.
    pub fn dispatch<F: FnMut(Packet<'_>)>(
        &mut self,
        count: Option<usize>,
        f: F,
    ) -> Result<usize, Error> {
        let cnt = match count {
            Some(0) => return Ok(0),
            Some(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
            None => -1,
        };
        struct Ctx<F> {
            f: F,
            panic: Option<Box<dyn Any + Send>>,
            pcap: *mut PcapT,
            lib: &'static Lib,
        }
        unsafe extern "C" fn callback<F: FnMut(Packet<'_>)>(
            user: *mut u8,
            hdr: *const PacketHeader,
            data: *const u8,
        ) {
            // SAFETY: `user` is the Ctx below; hdr and data are valid for this call.
            let ctx = unsafe { &mut *(user as *mut Ctx<F>) };
            if ctx.panic.is_some() {
                return;
            }
            let header = unsafe { &*hdr };
            prefetch_ahead(data);
            let packet = Packet {
                header,
                data: unsafe { std::slice::from_raw_parts(data, header.caplen as usize) },
            };
            // A panic must not unwind through C: stop the loop and resume it outside.
            let f = &mut ctx.f;
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(packet))) {
                ctx.panic = Some(e);
                unsafe { (ctx.lib.breakloop)(ctx.pcap) };
            }
        }
        let mut ctx = Ctx {
            f,
            panic: None,
            pcap: self.raw(),
            lib: self.lib(),
        };
        // SAFETY: an open handle; ctx outlives the call.
        let rc = unsafe {
            (self.lib().dispatch)(
                self.raw(),
                cnt,
                callback::<F>,
                &mut ctx as *mut Ctx<F> as *mut u8,
            )
        };
        if let Some(p) = ctx.panic {
            resume_unwind(p);
        }
        // A break asked for while no call was waiting stays pending and ends the next call
        // with PCAP_ERROR_BREAK (and no message): the capture's once-a-second flush timer
        // races its own reads that way, and reading it as a device failure ended live
        // captures early.
        if rc == PCAP_ERROR_BREAK {
            return Ok(0);
        }
        if rc < 0 {
            return Err(Error::Pcap(self.last_error()));
        }
        Ok(rc as usize)
    }

    /// A handle another thread can use to wake a blocked [`Pcap::dispatch`].
    pub fn breakloop_handle(&self) -> BreakLoop {
        BreakLoop {
            handle: Arc::downgrade(&self.handle),
        }
    }

    /// Makes reads return at once when nothing is waiting.
    pub fn setnonblock(self) -> Result<Pcap, Error> {
        let mut err = [0 as c_char; ERRBUF_SIZE];
        // SAFETY: an open handle.
        if unsafe { (self.lib().setnonblock)(self.raw(), 1, err.as_mut_ptr()) } < 0 {
            return Err(Error::Pcap(errbuf_string(&err)));
        }
        Ok(self)
    }

    /// The kernel's counters since the start (live handles).
    pub fn stats(&mut self) -> Result<Stat, Error> {
        let mut s = RawStat {
            ps_recv: 0,
            ps_drop: 0,
            ps_ifdrop: 0,
        };
        // SAFETY: an open handle; s is the struct pcap.h declares.
        if unsafe { (self.lib().stats)(self.raw(), &mut s) } < 0 {
            return Err(Error::Pcap(self.last_error()));
        }
        Ok(Stat {
            received: s.ps_recv,
            dropped: s.ps_drop,
            if_dropped: s.ps_ifdrop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_link_types_and_compiles_against_a_dead_handle() {
        assert_eq!(link_name(1).as_deref(), Some("EN10MB"));
        assert_eq!(link_name(276).as_deref(), Some("LINUX_SLL2"));
        let dead = Pcap::open_dead(1).unwrap();
        assert_eq!(dead.datalink(), 1);
        assert!(dead.compile("tcp port 80", true).is_ok());
        let e = dead.compile("tcp port", true).err().unwrap();
        assert!(e.to_string().contains("syntax error"), "{e}");
    }

    #[test]
    fn a_missing_file_is_libpcaps_error() {
        let e = Pcap::open_offline(Path::new("/nonexistent/x.pcap"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("No such file"), "{e}");
    }

    #[test]
    fn a_panic_in_the_handler_unwinds_after_libpcap_returns() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcap/lo-en10mb.pcap");
        let mut cap = Pcap::open_offline(&path).unwrap();
        let mut calls = 0;
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _ = cap.dispatch(None, |_| {
                calls += 1;
                panic!("handler")
            });
        }));
        assert_eq!(r.err().unwrap().downcast_ref::<&str>(), Some(&"handler"));
        // The loop stopped at the panic instead of running the handler on every packet.
        assert_eq!(calls, 1);
        drop(cap);
    }

    /// A break that arrives while no read waits ends the next read: that read is woken, not
    /// failed, and the one after it reads the packets.
    #[test]
    fn a_pending_break_wakes_the_next_read_without_an_error() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcap/lo-en10mb.pcap");
        let mut cap = Pcap::open_offline(&path).unwrap();
        cap.breakloop_handle().breakloop();
        let mut seen = 0;
        assert_eq!(cap.dispatch(None, |_| seen += 1).unwrap(), 0);
        assert_eq!(seen, 0);
        let read = cap.dispatch(None, |_| seen += 1).unwrap();
        assert!(read > 0 && read == seen, "{read} {seen}");
    }
}
