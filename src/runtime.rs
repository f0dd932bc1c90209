//! The libtorch runtime the process has loaded: its version, checked against
//! the one this code was built for before any work is done, and its CUDA
//! part, which is loaded here at run time rather than linked.
//!
//! The library and the CLI link libtorch's CPU part only, so that an install
//! whose runtime has no CUDA part (`ST_RUNTIME=cpu`) loads. [`check`] then
//! `dlopen`s `libtorch_cuda.so` from the folder the loaded `libtorch_cpu.so`
//! came from (libtorch registers its CUDA backend as that library loads) and
//! the CUDA shim `libstyletransfer_cuda.so` (CUDA graphs and allocator
//! statistics, `csrc/cuda_shim.cpp`) from a `styletransfer/` folder beside
//! this code. Both must happen before anything asks libtorch about CUDA: it
//! caches the first answer.
//!
//! The optical-flow shim `libstyletransfer_flow.so` (OpenCV's DIS flow,
//! `csrc/flow_shim.cpp`) is found in the same folder and loaded on first use
//! ([`flow_shim`]), with `RTLD_LOCAL`: OpenCV's BLAS, LAPACK and TBB stay out
//! of the global symbol scope, and a process that never needs flow never
//! needs OpenCV.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

extern "C" {
    fn st_torch_built_version() -> *const c_char;
    fn st_torch_runtime_version(buffer: *mut c_char, size: usize) -> c_int;
}

/// The libtorch version this code was compiled against (`2.11.0`).
pub fn built_version() -> &'static str {
    // SAFETY: returns a NUL-terminated string literal.
    unsafe { CStr::from_ptr(st_torch_built_version()) }.to_str().unwrap_or("?")
}

/// The version of the libtorch loaded in this process, from its build
/// settings (`at::show_config()`); `None` when it does not say. Call it
/// after [`check`] has loaded the CUDA part (libtorch's answer about CUDA
/// is fixed by the first question).
pub fn loaded_version() -> Option<String> {
    let mut buffer = [0 as c_char; 64];
    // SAFETY: the buffer is writable for its length; the function writes a
    // NUL-terminated string into it on success.
    let status = unsafe { st_torch_runtime_version(buffer.as_mut_ptr(), buffer.len()) };
    // SAFETY: on success the buffer holds a NUL-terminated string.
    (status == 0).then(|| unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned())
}

/// The file the object holding `address` was loaded from (`dladdr`): a
/// shared library, or the program (as `/proc/self/exe` names it).
pub(crate) fn object_file(address: *const c_void) -> Option<PathBuf> {
    // SAFETY: `info` is a valid out-parameter; dladdr only reads `address`.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated file name.
    let name = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    let path = PathBuf::from(name);
    // The main program's entry may be a bare name; the loader knows it as /proc/self/exe.
    if path.is_absolute() {
        Some(path)
    } else {
        std::env::current_exe().ok()
    }
}

/// The loaded `libtorch_cpu.so`, found through one of its symbols.
pub fn libtorch_cpu_file() -> Option<PathBuf> {
    // SAFETY: dlsym on the global namespace with a NUL-terminated name.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_ZN2at11show_configB5cxx11Ev".as_ptr()) };
    if symbol.is_null() {
        return None;
    }
    object_file(symbol)
}

/// The file this code was loaded from: the library, or the program it is
/// linked into (the CLI, a test).
fn this_object() -> Option<PathBuf> {
    object_file(built_version as *const c_void)
}

fn dlerror_text() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}

fn open(path: &Path, flags: c_int) -> std::result::Result<*mut c_void, String> {
    let name = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "path holds a NUL byte".to_string())?;
    // SAFETY: dlopen with a NUL-terminated path; its initialisers are libtorch's own.
    let handle = unsafe { libc::dlopen(name.as_ptr(), flags) };
    if handle.is_null() {
        Err(dlerror_text())
    } else {
        Ok(handle)
    }
}

/// The address of `name` in the library `handle` opened (`owner` names it in the error).
fn symbol(handle: *mut c_void, name: &CStr, owner: &str) -> std::result::Result<*mut c_void, String> {
    // SAFETY: dlsym on a live handle with a NUL-terminated name.
    let symbol = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if symbol.is_null() {
        Err(format!("{owner} lacks {}", name.to_string_lossy()))
    } else {
        Ok(symbol)
    }
}

type LastErrorFn = unsafe extern "C" fn() -> *const c_char;
type GraphNewFn = unsafe extern "C" fn(c_int) -> *mut c_void;
type GraphFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type GraphFreeFn = unsafe extern "C" fn(*mut c_void);
type MemoryStatsFn = unsafe extern "C" fn(c_int, *mut u64, *mut u64, *mut u64, *mut u64) -> c_int;
type DeviceFn = unsafe extern "C" fn(c_int) -> c_int;
type ReleaseFn = unsafe extern "C" fn() -> c_int;

/// The CUDA shim's functions (see `csrc/cuda_shim.cpp` for each contract).
#[allow(missing_docs)]
pub struct Shim {
    pub last_error: LastErrorFn,
    pub graph_new: GraphNewFn,
    pub graph_free: GraphFreeFn,
    pub graph_begin: GraphFn,
    pub graph_end: GraphFn,
    pub graph_replay: GraphFn,
    pub memory_stats: MemoryStatsFn,
    pub reset_peak: DeviceFn,
    pub release_cached: ReleaseFn,
}

impl Shim {
    /// The last failure's message on this thread.
    pub fn error(&self) -> String {
        // SAFETY: the shim returns a NUL-terminated thread-local string that
        // stays valid until the next failing call on this thread.
        unsafe { CStr::from_ptr((self.last_error)()) }.to_string_lossy().into_owned()
    }

    /// Looks every function up in the opened shim.
    fn resolve(handle: *mut c_void) -> std::result::Result<Self, String> {
        let lookup = |name: &CStr| symbol(handle, name, "the CUDA shim");
        // SAFETY: each symbol is the shim's extern "C" function of the
        // signature its field declares (csrc/cuda_shim.cpp).
        unsafe {
            Ok(Self {
                last_error: std::mem::transmute::<*mut c_void, LastErrorFn>(lookup(c"st_cuda_last_error")?),
                graph_new: std::mem::transmute::<*mut c_void, GraphNewFn>(lookup(c"st_cuda_graph_new")?),
                graph_free: std::mem::transmute::<*mut c_void, GraphFreeFn>(lookup(c"st_cuda_graph_free")?),
                graph_begin: std::mem::transmute::<*mut c_void, GraphFn>(lookup(c"st_cuda_graph_begin")?),
                graph_end: std::mem::transmute::<*mut c_void, GraphFn>(lookup(c"st_cuda_graph_end")?),
                graph_replay: std::mem::transmute::<*mut c_void, GraphFn>(lookup(c"st_cuda_graph_replay")?),
                memory_stats: std::mem::transmute::<*mut c_void, MemoryStatsFn>(lookup(c"st_cuda_memory_stats")?),
                reset_peak: std::mem::transmute::<*mut c_void, DeviceFn>(lookup(c"st_cuda_reset_peak")?),
                release_cached: std::mem::transmute::<*mut c_void, ReleaseFn>(lookup(c"st_cuda_release_cached")?),
            })
        }
    }
}

/// What the runtime's CUDA part came to.
pub struct CudaPart {
    /// `libtorch_cuda.so` as loaded, or why it was not.
    pub libtorch_cuda: std::result::Result<PathBuf, String>,
    /// The CUDA shim, when `libtorch_cuda.so` loaded and the shim was found.
    pub shim: Option<Shim>,
    /// Where the shim was loaded from, or why not.
    pub shim_file: std::result::Result<PathBuf, String>,
}

/// The shim's file name, inside a `styletransfer/` folder.
pub const SHIM_FILE: &str = "styletransfer/libstyletransfer_cuda.so";

/// The flow shim's file name, inside a `styletransfer/` folder.
pub const FLOW_SHIM_FILE: &str = "styletransfer/libstyletransfer_flow.so";

/// Where a shim (`file`, under `styletransfer/`) may be, beside this code:
/// `styletransfer/` in its folder (the library in `lib/`, the CLI and the
/// library in `target/release`), in the folder above (tests and examples in
/// `target/release/deps` and `examples`), and in `../lib/` (the installed
/// CLI in `bin/`).
fn shim_candidates(object: &Path, file: &str) -> Vec<PathBuf> {
    let Some(dir) = object.parent() else { return Vec::new() };
    vec![dir.join(file), dir.join("..").join(file), dir.join("../lib").join(file)]
}

/// The first place [`shim_candidates`] names that holds `file`.
fn find_shim(file: &str) -> Option<PathBuf> {
    this_object().map(|o| shim_candidates(&o, file)).unwrap_or_default().into_iter().find(|p| p.is_file())
}

fn load_cuda_part() -> CudaPart {
    let Some(cpu) = libtorch_cpu_file() else {
        let missing = "libtorch_cpu.so was not found among the loaded libraries".to_string();
        return CudaPart { libtorch_cuda: Err(missing.clone()), shim: None, shim_file: Err(missing) };
    };
    let cuda = cpu.with_file_name("libtorch_cuda.so");
    if !cuda.is_file() {
        let reason = format!(
            "the libtorch runtime in {} has no CUDA part (no libtorch_cuda.so; an install made with ST_RUNTIME=cpu)",
            cpu.parent().unwrap_or(Path::new("")).display()
        );
        return CudaPart { libtorch_cuda: Err(reason.clone()), shim: None, shim_file: Err(reason) };
    }
    if let Err(reason) = open(&cuda, libc::RTLD_NOW | libc::RTLD_GLOBAL) {
        let reason = format!("loading {}: {reason}", cuda.display());
        return CudaPart { libtorch_cuda: Err(reason.clone()), shim: None, shim_file: Err(reason) };
    }
    let (shim, shim_file) = if !cfg!(st_cuda_shim) {
        (None, Err("this library was built without the CUDA shim (no CUDA C++ headers)".to_string()))
    } else {
        match find_shim(SHIM_FILE) {
            None => (None, Err(format!("{SHIM_FILE} was not found beside this library"))),
            Some(file) => match open(&file, libc::RTLD_NOW | libc::RTLD_LOCAL).and_then(Shim::resolve) {
                Ok(shim) => (Some(shim), Ok(file)),
                Err(reason) => (None, Err(format!("loading {}: {reason}", file.display()))),
            },
        }
    };
    CudaPart { libtorch_cuda: Ok(cuda), shim, shim_file }
}

static CUDA_PART: OnceLock<CudaPart> = OnceLock::new();
static CHECKED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// The runtime's CUDA part, loaded on first use (see the module's notes).
pub fn cuda_part() -> &'static CudaPart {
    CUDA_PART.get_or_init(load_cuda_part)
}

/// The CUDA shim, when loaded.
pub fn shim() -> Option<&'static Shim> {
    cuda_part().shim.as_ref()
}

/// Loads the CUDA part (once) and checks that the loaded libtorch is the
/// version this code was built for. Called before an engine touches
/// libtorch; the answer is computed once per process.
pub fn check() -> Result<()> {
    let outcome = CHECKED.get_or_init(|| {
        cuda_part();
        let built = built_version();
        let file = libtorch_cpu_file().map(|p| p.display().to_string()).unwrap_or_else(|| "libtorch_cpu.so".into());
        match loaded_version() {
            Some(found) if found == built => Ok(()),
            Some(found) => Err(format!(
                "{file} is version {found}, but this library was built for libtorch {built}; use the runtime \
                 installed with it (check LD_LIBRARY_PATH) or rebuild"
            )),
            None => Err(format!("{file} does not report its version; this library was built for libtorch {built}")),
        }
    });
    outcome.clone().map_err(Error::Runtime)
}

type FlowErrorFn = unsafe extern "C" fn() -> *const c_char;
type FlowVersionFn = unsafe extern "C" fn() -> *const c_char;
type DisFn = unsafe extern "C" fn(*const u8, *const u8, c_int, c_int, c_int, *mut f32) -> c_int;

/// The flow shim's functions (see `csrc/flow_shim.cpp` for each contract).
pub struct FlowShim {
    last_error: FlowErrorFn,
    opencv_version: FlowVersionFn,
    dis: DisFn,
    /// Where it was loaded from.
    pub file: PathBuf,
}

/// DIS optical flow's quality presets (OpenCV's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisPreset {
    /// `PRESET_ULTRAFAST`.
    Ultrafast = 0,
    /// `PRESET_FAST`.
    Fast = 1,
    /// `PRESET_MEDIUM`.
    Medium = 2,
}

impl FlowShim {
    /// The OpenCV version the shim was built against.
    pub fn opencv_version(&self) -> String {
        // SAFETY: returns a static NUL-terminated string.
        unsafe { CStr::from_ptr((self.opencv_version)()) }.to_string_lossy().into_owned()
    }

    /// The DIS flow from `from` to `to`, both `width`×`height` interleaved
    /// 8-bit RGB: `(u, v)` per pixel of `from`, in pixels, rows top down.
    pub fn dis(&self, from: &[u8], to: &[u8], width: u32, height: u32, preset: DisPreset) -> Result<Vec<f32>> {
        let pixels = width as usize * height as usize;
        if from.len() != pixels * 3 || to.len() != pixels * 3 || width > i32::MAX as u32 || height > i32::MAX as u32 {
            return Err(Error::invalid("flow", format!("frames are not both {width}×{height} RGB")));
        }
        let mut flow = vec![0f32; pixels * 2];
        // SAFETY: both inputs hold width·height·3 bytes and `flow` width·height·2
        // floats, as the shim's contract asks; it only reads the inputs.
        let status = unsafe {
            (self.dis)(from.as_ptr(), to.as_ptr(), width as c_int, height as c_int, preset as c_int, flow.as_mut_ptr())
        };
        if status != 0 {
            // SAFETY: a NUL-terminated thread-local message, valid until the next failure here.
            let message = unsafe { CStr::from_ptr((self.last_error)()) }.to_string_lossy().into_owned();
            return Err(Error::Runtime(format!("optical flow (OpenCV): {message}")));
        }
        Ok(flow)
    }

    fn load() -> std::result::Result<Self, String> {
        let file = find_shim(FLOW_SHIM_FILE).ok_or_else(|| {
            format!(
                "{FLOW_SHIM_FILE} was not found beside this library (it is built where OpenCV 4's development files \
                 are installed: libopencv-dev)"
            )
        })?;
        let handle = open(&file, libc::RTLD_NOW | libc::RTLD_LOCAL).map_err(|reason| {
            format!(
                "loading {}: {reason} (optical flow needs OpenCV 4's video module: libopencv-video406)",
                file.display()
            )
        })?;
        let owner = file.display().to_string();
        let lookup = |name: &CStr| symbol(handle, name, &owner);
        // SAFETY: each symbol is the shim's extern "C" function of the
        // signature its field declares (csrc/flow_shim.cpp).
        unsafe {
            Ok(Self {
                last_error: std::mem::transmute::<*mut c_void, FlowErrorFn>(lookup(c"st_flow_last_error")?),
                opencv_version: std::mem::transmute::<*mut c_void, FlowVersionFn>(lookup(c"st_flow_opencv_version")?),
                dis: std::mem::transmute::<*mut c_void, DisFn>(lookup(c"st_flow_dis")?),
                file: file.clone(),
            })
        }
    }
}

static FLOW_SHIM: OnceLock<std::result::Result<FlowShim, String>> = OnceLock::new();

/// The optical-flow shim, loaded on first use; [`Error::Runtime`] says why
/// it is not there.
pub fn flow_shim() -> Result<&'static FlowShim> {
    FLOW_SHIM.get_or_init(FlowShim::load).as_ref().map_err(|reason| Error::Runtime(reason.clone()))
}
