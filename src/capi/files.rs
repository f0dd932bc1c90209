//! What the library reads from and writes to files: style images and
//! packs by path, pack creation, pack descriptions and the installed list
//! of packs.

#[cfg(doc)]
use super::*; // the functions the docs link to

use std::ffi::{c_char, CString};
use std::path::Path;

use super::boundary::{c_str, check_blend_weight, null_argument, Failure};
use super::context::{library_dir, st_context, styles_of};
use super::types::*;
use crate::error::Error;
use crate::pack::{list_packs, style_dirs, StylePack};
use crate::style::StyleImage;

/// Adds the style at `path` with `blend_weight`: a pack when `pack` says
/// so, an image when it says not, and when it is `None` whatever
/// [`StylePack::is_pack_path`] makes of the file.
unsafe fn add_from_path(
    context: &st_context,
    path: *const c_char,
    blend_weight: f32,
    pack: Option<bool>,
) -> Result<(), Failure> {
    let path = Path::new(c_str(path, "path")?.ok_or_else(|| null_argument("path"))?);
    let weight = check_blend_weight(blend_weight)?;
    let mut styles = styles_of(context)?;
    if pack.unwrap_or_else(|| StylePack::is_pack_path(path)) {
        let pack = StylePack::load(path, context.engine.model().weights_sha256())?;
        Ok(styles.add_pack(pack, weight)?)
    } else {
        let image = crate::image::load(path)?.rgb;
        Ok(styles.add(StyleImage { image, weight })?)
    }
}

/// Adds a style image read from a file (PNG, JPEG, TIFF, BMP, PNM, WebP;
/// the decoders of the `stylize` CLI, so both see the same pixels) with a
/// blend weight (finite, ≥ 0). `path` is a UTF-8 path read during the call.
/// Files of up to [`ST_MAX_SIDE`] pixels a side and 2^27 pixels in all are
/// read, and no decoder may allocate more than 2 GiB for one.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or path, `ST_IMAGE_ERROR`
/// for a missing, unreadable, non-image, corrupt or truncated file, one
/// over those limits or with NaN or infinite samples, `ST_INVALID_ARGUMENT` for a
/// bad weight, `ST_BUSY` from inside a progress callback. One thread at a
/// time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_add_style_file(ctx: *mut st_context, path: *const c_char, blend_weight: f32) -> st_status {
    ffi_boundary!(ctx, |context| add_from_path(context, path, blend_weight, Some(false)))
}

/// Adds a style pack (`.stpack`) with a blend weight (finite, ≥ 0; weights
/// are normalised over all styles and packs). The pack must have been made
/// with this handle's model. Its targets are used as stored, so no style
/// image is processed at run time. To switch to a pack, call
/// [`st_clear_styles`] first; to blend packs, add several.
///
/// `path` is a UTF-8 path, read during the call. Returns
/// `ST_NULL_ARGUMENT` for a NULL handle or path, `ST_PACK_ERROR` for a
/// missing, corrupt, truncated, future-version or other-model pack (a pack
/// whose contents do not match the digest it records, `data_sha256`, is
/// corrupt: one flipped bit is enough; packs from 0.1 record none),
/// `ST_INVALID_ARGUMENT` for a bad weight, `ST_BUSY` from inside a progress
/// callback. One thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_add_style_pack(ctx: *mut st_context, path: *const c_char, blend_weight: f32) -> st_status {
    ffi_boundary!(ctx, |context| add_from_path(context, path, blend_weight, Some(true)))
}

/// Computes a style pack from the style images added to the handle (with
/// their blend weights) and writes it to `path` (UTF-8; written to a
/// temporary name and renamed on success), named `name` (UTF-8, shown in
/// host menus).
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle, name or path,
/// `ST_INVALID_ARGUMENT` when no style image was added or a pack was added
/// (packs cannot be re-packed), `ST_PACK_ERROR` when the file cannot be
/// written, `ST_BUSY` from inside a progress callback. One thread at a time
/// per handle.
#[no_mangle]
pub unsafe extern "C" fn st_create_style_pack(
    ctx: *mut st_context,
    name: *const c_char,
    path: *const c_char,
) -> st_status {
    ffi_boundary!(ctx, |context| {
        let name = c_str(name, "name")?.ok_or_else(|| null_argument("name"))?;
        let path = c_str(path, "path")?.ok_or_else(|| null_argument("path"))?;
        let styles = styles_of(context)?;
        let images =
            styles.images().map_err(|_| Error::invalid("styles", "packs cannot be re-packed; add images only"))?;
        let pack = StylePack::create(context.engine.model(), &images, name)?;
        Ok(pack.save(Path::new(path))?)
    })
}

/// A style pack's description, read by [`st_read_pack_info`]. Every pointer
/// stays valid until [`st_pack_info_free`].
#[repr(C)]
#[derive(Debug)]
pub struct st_pack_info {
    /// Display name (UTF-8).
    pub name: *const c_char,
    /// The model digest the pack was made with.
    pub model_sha256: *const c_char,
    /// The library version that wrote it.
    pub library_version: *const c_char,
    /// Pack format version.
    pub format_version: u32,
    /// Number of source images blended into it.
    pub source_count: u32,
    /// The style sizes held (long sides in pixels, ascending).
    pub sides: *const u32,
    /// Number of entries in `sides`.
    pub side_count: usize,
    /// The thumbnail, PNG bytes.
    pub thumbnail_png: *const u8,
    /// Length of `thumbnail_png` (at most 64 KiB).
    pub thumbnail_size: usize,
}

#[repr(C)]
struct PackInfoBox {
    public: st_pack_info,
    name: CString,
    model: CString,
    version: CString,
    sides: Vec<u32>,
    thumbnail: Vec<u8>,
}

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Reads a pack's description and thumbnail without loading its targets.
/// On success writes to `*out` a description owned by the caller, to be
/// released with [`st_pack_info_free`].
///
/// Returns `ST_NULL_ARGUMENT` for a NULL path or `out`, `ST_PACK_ERROR` for
/// a missing, corrupt or future-version pack (the message goes to stderr
/// when `ST_VERBOSE` is set: there is no handle). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_read_pack_info(path: *const c_char, out: *mut *mut st_pack_info) -> st_status {
    ffi_boundary!("st_read_pack_info": {
        let out = out.as_mut().ok_or_else(|| null_argument("out"))?;
        let path = c_str(path, "path")?.ok_or_else(|| null_argument("path"))?;
        let info = StylePack::read_info(Path::new(path))?;
        let mut boxed = Box::new(PackInfoBox {
            public: st_pack_info {
                name: std::ptr::null(),
                model_sha256: std::ptr::null(),
                library_version: std::ptr::null(),
                format_version: info.format_version,
                source_count: info.source_sha256.len() as u32,
                sides: std::ptr::null(),
                side_count: info.sides.len(),
                thumbnail_png: std::ptr::null(),
                thumbnail_size: info.thumbnail.len(),
            },
            name: c_string(&info.name),
            model: c_string(&info.model_sha256),
            version: c_string(&info.library_version),
            sides: info.sides,
            thumbnail: info.thumbnail,
        });
        boxed.public.name = boxed.name.as_ptr();
        boxed.public.model_sha256 = boxed.model.as_ptr();
        boxed.public.library_version = boxed.version.as_ptr();
        boxed.public.sides = boxed.sides.as_ptr();
        boxed.public.thumbnail_png = boxed.thumbnail.as_ptr();
        *out = Box::into_raw(boxed).cast();
        Ok(())
    })
}

/// Releases a description from [`st_read_pack_info`]. NULL is a no-op;
/// freeing twice is forbidden. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_pack_info_free(info: *mut st_pack_info) {
    ffi_boundary!({
        if !info.is_null() {
            drop(Box::from_raw(info.cast::<PackInfoBox>()));
        }
    })
}

/// One style pack found in the style folders.
#[repr(C)]
#[derive(Debug)]
pub struct st_style_entry {
    /// Display name (UTF-8).
    pub name: *const c_char,
    /// The pack's file (UTF-8), for [`st_add_style_pack`].
    pub path: *const c_char,
    /// Its thumbnail, PNG bytes.
    pub thumbnail_png: *const u8,
    /// Length of `thumbnail_png`.
    pub thumbnail_size: usize,
}

/// The packs found by [`st_list_styles`]. Valid until [`st_style_list_free`].
#[repr(C)]
#[derive(Debug)]
pub struct st_style_list {
    /// `count` entries, sorted by name.
    pub entries: *const st_style_entry,
    /// Number of entries (may be 0).
    pub count: usize,
}

#[repr(C)]
struct StyleListBox {
    public: st_style_list,
    entries: Vec<st_style_entry>,
    strings: Vec<(CString, CString)>,
    thumbnails: Vec<Vec<u8>>,
}

/// Lists the style packs in the style folders: each folder of
/// `ST_STYLE_PATH` (colon-separated), then
/// `$XDG_DATA_HOME/styletransfer/styles` (default
/// `~/.local/share/styletransfer/styles`), then the installed
/// `share/styletransfer/styles` beside the library. A name found earlier
/// hides the same name later; unreadable files are skipped. On success
/// writes to `*out` a list owned by the caller, released with
/// [`st_style_list_free`].
///
/// Returns `ST_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_list_styles(out: *mut *mut st_style_list) -> st_status {
    ffi_boundary!("st_list_styles": {
        let out = out.as_mut().ok_or_else(|| null_argument("out"))?;
        let found = installed_packs();
        let strings: Vec<(CString, CString)> =
            found.iter().map(|e| (c_string(&e.name), c_string(&e.path.to_string_lossy()))).collect();
        let thumbnails: Vec<Vec<u8>> = found.into_iter().map(|e| e.thumbnail).collect();
        let entries = strings
            .iter()
            .zip(&thumbnails)
            .map(|((name, path), thumb)| st_style_entry {
                name: name.as_ptr(),
                path: path.as_ptr(),
                thumbnail_png: thumb.as_ptr(),
                thumbnail_size: thumb.len(),
            })
            .collect::<Vec<_>>();
        let mut boxed = Box::new(StyleListBox {
            public: st_style_list { entries: std::ptr::null(), count: entries.len() },
            entries,
            strings,
            thumbnails,
        });
        boxed.public.entries = boxed.entries.as_ptr();
        *out = Box::into_raw(boxed).cast();
        Ok(())
    })
}

/// Releases a list from [`st_list_styles`]. NULL is a no-op; freeing twice
/// is forbidden. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_style_list_free(list: *mut st_style_list) {
    ffi_boundary!({
        if !list.is_null() {
            drop(Box::from_raw(list.cast::<StyleListBox>()));
        }
    })
}

/// The packs of the style folders, as [`st_list_styles`] lists them.
fn installed_packs() -> Vec<crate::pack::PackEntry> {
    let installed = library_dir().map(|d| d.join("../share/styletransfer/styles"));
    list_packs(&style_dirs(installed.as_deref()))
}

/// Adds a style from a path that names either a style pack or a style
/// image, with a blend weight (finite, ≥ 0): a file whose name ends in
/// `.stpack` (any case), or that starts as a pack does (a safetensors
/// header, so any safetensors file is taken for a pack), is added as by
/// [`st_add_style_pack`]; any other as by [`st_add_style_file`]. Hosts that
/// let users pick either use this rather than looking at the name
/// themselves.
///
/// Returns what those two functions return: `ST_NULL_ARGUMENT`,
/// `ST_PACK_ERROR` for a bad pack, `ST_IMAGE_ERROR` for a missing or
/// unreadable image, `ST_INVALID_ARGUMENT` for a bad weight, `ST_BUSY` from
/// inside a progress callback. One thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_add_style_path(ctx: *mut st_context, path: *const c_char, blend_weight: f32) -> st_status {
    ffi_boundary!(ctx, |context| add_from_path(context, path, blend_weight, None))
}

/// Adds a style named the way a user types it in a host with only a text
/// field (a frei0r filter parameter, a script): `style` is a path to a
/// file, taken as by [`st_add_style_path`], or else the name of an
/// installed pack, as [`st_list_styles`] lists it, compared without regard
/// to ASCII case (`"swirls"` finds "Swirls"). A file of that name wins over
/// a pack of that name. `style` is UTF-8, read during the call; the blend
/// weight is finite and ≥ 0.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or style, what
/// [`st_add_style_path`] returns for a file, `ST_PACK_ERROR` when no file
/// and no installed pack has that name (the message says so) or the pack is
/// bad, `ST_INVALID_ARGUMENT` for a bad weight, `ST_BUSY` from inside a
/// progress callback. One thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_add_style_named(
    ctx: *mut st_context,
    style: *const c_char,
    blend_weight: f32,
) -> st_status {
    ffi_boundary!(ctx, |context| {
        let name = c_str(style, "style")?.ok_or_else(|| null_argument("style"))?;
        if Path::new(name).exists() {
            return add_from_path(context, style, blend_weight, None);
        }
        let weight = check_blend_weight(blend_weight)?;
        let mut styles = styles_of(context)?;
        let entry =
            installed_packs().into_iter().find(|e| e.name.eq_ignore_ascii_case(name)).ok_or_else(|| Error::Pack {
                path: name.into(),
                reason: "is neither a file nor the name of an installed style pack (st_list_styles lists them)".into(),
            })?;
        let pack = StylePack::load(&entry.path, context.engine.model().weights_sha256())?;
        Ok(styles.add_pack(pack, weight)?)
    })
}
