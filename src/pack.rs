//! Style packs (`.stpack`): a style's Gram targets at every style size a run
//! can ask for, precomputed, so switching styles costs no forward pass.
//!
//! The file is safetensors: tensors `gram.<side>.<layer>` (fp32 `[C, C]`, one
//! per style layer and ladder size) and `thumbnail` (u8, a PNG of at most
//! 64 KiB), and string metadata:
//!
//! | key | value |
//! |---|---|
//! | `format` | `styletransfer-stpack` |
//! | `format_version` | `1` (a reader refuses newer versions) |
//! | `name` | display name |
//! | `model_sha256` | the model's `weights_sha256`; a pack is refused by another model |
//! | `source_sha256` | SHA-256 of each source image's pixels, comma-separated |
//! | `blend` | each source's normalised blend weight, comma-separated |
//! | `layers` | `conv1_1,conv2_1,conv3_1,conv4_1,conv5_1` |
//! | `sides` | the ladder sizes held, ascending, comma-separated |
//! | `library_version` | the version that wrote it |
//! | `data_sha256` | SHA-256 over the other metadata and every tensor (see [`data_digest`]); a pack whose contents do not match it is refused |

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::loss::StyleTargets;
use crate::model::{sha256_hex, Vgg19, LAYERS, STYLE_LAYER_INDICES, STYLE_LAYER_NAMES};
use crate::targets::{distinct_ladder_sides, image_targets, normalised_weights, StyleImage, LADDER};

/// The `format` metadata value.
pub const PACK_FORMAT: &str = "styletransfer-stpack";
/// The format version this library writes and the newest it reads.
pub const PACK_FORMAT_VERSION: u32 = 1;
/// Largest thumbnail, in bytes.
pub const MAX_THUMBNAIL_BYTES: usize = 64 * 1024;
/// A pack's file extension.
pub const PACK_EXTENSION: &str = "stpack";
/// Largest header a pack may have (the JSON part of safetensors).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// What a pack says about itself (readable without loading its targets).
#[derive(Clone, Debug, PartialEq)]
pub struct PackInfo {
    /// Display name.
    pub name: String,
    /// The model's `weights_sha256` the targets were computed with.
    pub model_sha256: String,
    /// SHA-256 of each source image's pixels.
    pub source_sha256: Vec<String>,
    /// Each source's normalised blend weight.
    pub blend: Vec<f64>,
    /// Style layers held.
    pub layers: Vec<String>,
    /// Ladder sizes held, ascending.
    pub sides: Vec<u32>,
    /// The library version that wrote it.
    pub library_version: String,
    /// The format version.
    pub format_version: u32,
    /// PNG bytes (at most [`MAX_THUMBNAIL_BYTES`]).
    pub thumbnail: Vec<u8>,
}

/// A loaded pack: its description and its targets (CPU, fp32).
pub struct StylePack {
    info: PackInfo,
    grams: HashMap<u32, Vec<Tensor>>,
}

fn pack_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Pack { path: path.to_path_buf(), reason: reason.into() }
}

/// SHA-256 of an image's samples (as 32-bit floats, little-endian) and size.
pub fn image_sha256(image: &RgbImage) -> String {
    let mut hasher = Sha256::new();
    hasher.update(image.width().to_le_bytes());
    hasher.update(image.height().to_le_bytes());
    for v in image.data() {
        hasher.update(v.to_le_bytes());
    }
    sha256_hex(hasher)
}

fn thumbnail_png(image: &RgbImage) -> Result<Vec<u8>> {
    for edge in [128u32, 96, 64, 48, 32] {
        let scale = edge as f64 / image.width().max(image.height()) as f64;
        let (w, h) = if scale < 1.0 {
            (
                ((image.width() as f64 * scale).round() as u32).max(1),
                ((image.height() as f64 * scale).round() as u32).max(1),
            )
        } else {
            (image.width(), image.height())
        };
        let small = image.resize(w, h)?;
        let bytes: Vec<u8> = crate::image::quantise(small.data(), 255.0);
        let buffer = image::RgbImage::from_raw(w, h, bytes)
            .ok_or_else(|| Error::invalid("thumbnail", "buffer size does not match"))?;
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(buffer)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Error::invalid("thumbnail", e.to_string()))?;
        if png.len() <= MAX_THUMBNAIL_BYTES {
            return Ok(png);
        }
    }
    Err(Error::invalid("thumbnail", "could not fit a thumbnail in 64 KiB"))
}

fn channels(layer: usize) -> i64 {
    LAYERS[STYLE_LAYER_INDICES[layer]].2
}

impl StylePack {
    /// Computes a pack from style images (blend weights finite, ≥ 0, not all
    /// 0; normalised) with `model`, on its device. The targets equal those a
    /// run computes from the same images.
    pub fn create(model: &Vgg19, styles: &[StyleImage], name: &str) -> Result<Self> {
        let first = styles.first().ok_or_else(|| Error::invalid("style", "no style image given"))?;
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "is empty"));
        }
        let blend = normalised_weights(&styles.iter().map(|s| s.weight).collect::<Vec<_>>())?;
        let native = styles.iter().map(|s| s.image.width().max(s.image.height())).max().unwrap_or(0);
        let mut grams = HashMap::new();
        for side in distinct_ladder_sides(native) {
            let mut parts = Vec::with_capacity(styles.len());
            for (style, &weight) in styles.iter().zip(&blend) {
                parts.push((image_targets(model, &style.image, side)?, weight));
            }
            let targets = StyleTargets::blend(&parts)?;
            let on_cpu = targets
                .grams
                .iter()
                .map(|g| g.f_to_device(Device::Cpu)?.f_contiguous())
                .collect::<Result<Vec<_>, _>>()?;
            grams.insert(side, on_cpu);
        }
        let mut sides: Vec<u32> = grams.keys().copied().collect();
        sides.sort_unstable();
        let info = PackInfo {
            name: name.trim().to_string(),
            model_sha256: model.weights_sha256().to_string(),
            source_sha256: styles.iter().map(|s| image_sha256(&s.image)).collect(),
            blend,
            layers: STYLE_LAYER_NAMES.iter().map(|s| s.to_string()).collect(),
            sides,
            library_version: env!("CARGO_PKG_VERSION").to_string(),
            format_version: PACK_FORMAT_VERSION,
            thumbnail: thumbnail_png(&first.image)?,
        };
        Ok(Self { info, grams })
    }

    /// The pack's description.
    pub fn info(&self) -> &PackInfo {
        &self.info
    }

    /// Writes the pack (to a temporary name, renamed on success).
    pub fn save(&self, path: &Path) -> Result<()> {
        let metadata = metadata_of(&self.info);
        let mut buffers: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = Vec::new();
        let mut sides: Vec<u32> = self.grams.keys().copied().collect();
        sides.sort_unstable();
        for (side, grams) in sides.iter().map(|s| (s, &self.grams[s])) {
            for (layer, gram) in grams.iter().enumerate() {
                let c = channels(layer) as usize;
                let mut values = vec![0f32; c * c];
                gram.f_copy_data(&mut values, c * c)?;
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                buffers.push((format!("gram.{side}.{}", STYLE_LAYER_NAMES[layer]), bytes, vec![c, c], Dtype::F32));
            }
        }
        buffers.push(("thumbnail".into(), self.info.thumbnail.clone(), vec![self.info.thumbnail.len()], Dtype::U8));
        let views = buffers
            .iter()
            .map(|(name, bytes, shape, dtype)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| pack_error(path, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut metadata = metadata;
        let digest = data_digest(
            &metadata,
            views.iter().map(|(name, view)| (name.as_str(), view.dtype(), view.shape(), view.data())),
        );
        metadata.insert(DIGEST_KEY.to_string(), digest);
        let data = safetensors::serialize(views, Some(metadata)).map_err(|e| pack_error(path, e.to_string()))?;
        let data = canonical_header(&data).ok_or_else(|| pack_error(path, "could not order the header"))?;
        let temporary = path.with_extension(format!("{PACK_EXTENSION}.{}.tmp", std::process::id()));
        std::fs::write(&temporary, data).and_then(|_| std::fs::rename(&temporary, path)).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            pack_error(path, format!("cannot write: {e}"))
        })
    }

    /// Whether `path` names a pack: its name ends in `.stpack` (any case),
    /// or it starts as a pack does (a safetensors header: an 8-byte
    /// little-endian length that fits the file, then `{`). Reads at most 9
    /// bytes; a file that cannot be read is not a pack.
    pub fn is_pack_path(path: &Path) -> bool {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case(PACK_EXTENSION)) {
            return true;
        }
        let Ok(mut file) = File::open(path) else { return false };
        let mut start = [0u8; 9];
        if file.read_exact(&mut start).is_err() {
            return false;
        }
        let length = u64::from_le_bytes(start[..8].try_into().unwrap_or_default());
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        start[8] == b'{' && length.checked_add(8).is_some_and(|end| end <= size)
    }

    /// Reads a pack and checks it was made with `model_sha256`.
    pub fn load(path: &Path, model_sha256: &str) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| pack_error(path, format!("cannot read: {e}")))?;
        let (pack, integrity) = Self::parse(&bytes, path)?;
        if pack.info.model_sha256 != model_sha256 {
            return Err(pack_error(
                path,
                format!(
                    "made with another model (pack {}, loaded model {}); recreate it with this model",
                    short(&pack.info.model_sha256),
                    short(model_sha256)
                ),
            ));
        }
        integrity?;
        Ok(pack)
    }

    /// Parses and checks a pack's bytes (every tensor's presence, type,
    /// shape and finiteness, and the contents against `data_sha256`);
    /// `path` is for messages only.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let (pack, integrity) = Self::parse(bytes, path)?;
        integrity?;
        Ok(pack)
    }

    /// The pack of `bytes`, and apart the verdict of its digest, so that a
    /// pack whose metadata says plainly what is wrong with it (another
    /// model) is refused for that reason rather than as corrupt.
    fn parse(bytes: &[u8], path: &Path) -> Result<(Self, Result<()>)> {
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| pack_error(path, format!("not a style pack ({e})")))?;
        let mut metadata = header.metadata().clone().unwrap_or_default();
        let recorded = metadata.remove(DIGEST_KEY);
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| pack_error(path, format!("corrupt ({e})")))?;
        let thumbnail =
            tensors.tensor("thumbnail").map_err(|_| pack_error(path, "the thumbnail is missing"))?.data().to_vec();
        let info = info_from(&metadata, thumbnail, path)?;
        let mut grams = HashMap::new();
        for &side in &info.sides {
            let mut per_layer = Vec::with_capacity(STYLE_LAYER_NAMES.len());
            for (layer, name) in STYLE_LAYER_NAMES.iter().enumerate() {
                let key = format!("gram.{side}.{name}");
                let view = tensors.tensor(&key).map_err(|_| pack_error(path, format!("`{key}` is missing")))?;
                let c = channels(layer) as usize;
                if view.dtype() != Dtype::F32 || view.shape() != [c, c] {
                    return Err(pack_error(
                        path,
                        format!("`{key}` is {:?} {:?}, expected F32 [{c}, {c}]", view.dtype(), view.shape()),
                    ));
                }
                let values: Vec<f32> =
                    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(pack_error(path, format!("`{key}` holds NaN or infinite values")));
                }
                per_layer.push(Tensor::f_from_slice(&values)?.f_view([c as i64, c as i64])?);
            }
            grams.insert(side, per_layer);
        }
        // After the structure was read, so that a missing or misshapen tensor is
        // named as such. Packs written before 0.2 carry no digest and are read unchecked.
        let mut integrity = Ok(());
        if let Some(recorded) = recorded {
            let mut all = tensors.tensors();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            let actual = data_digest(
                &metadata,
                all.iter().map(|(name, view)| (name.as_str(), view.dtype(), view.shape(), view.data())),
            );
            if actual != recorded {
                integrity = Err(pack_error(
                    path,
                    format!(
                        "corrupt: its contents do not match the digest it records (data_sha256 {}, contents {})",
                        short(&recorded),
                        short(&actual)
                    ),
                ));
            }
        }
        Ok((Self { info, grams }, integrity))
    }

    /// Reads only a pack's description and thumbnail (the header and one
    /// small tensor), not its targets.
    pub fn read_info(path: &Path) -> Result<PackInfo> {
        let mut file = File::open(path).map_err(|e| pack_error(path, format!("cannot open: {e}")))?;
        let (header_len, json, metadata) =
            read_header(&mut file, MAX_HEADER_BYTES, "a style pack", |reason| pack_error(path, reason))?;
        let offsets = json
            .get("thumbnail")
            .and_then(|t| t.get("data_offsets"))
            .and_then(|o| o.as_array())
            .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)))
            .ok_or_else(|| pack_error(path, "the thumbnail is missing"))?;
        let size = offsets.1.checked_sub(offsets.0).filter(|&s| s as usize <= MAX_THUMBNAIL_BYTES);
        let size = size.ok_or_else(|| pack_error(path, "the thumbnail is larger than 64 KiB"))?;
        file.seek(SeekFrom::Start(8 + header_len + offsets.0)).map_err(|e| pack_error(path, e.to_string()))?;
        let mut thumbnail = vec![0u8; size as usize];
        file.read_exact(&mut thumbnail).map_err(|_| pack_error(path, "truncated thumbnail"))?;
        info_from(&metadata, thumbnail, path)
    }

    /// Targets at ladder size `side` on `device`; sizes above the largest
    /// held use the largest (the sources are never enlarged).
    pub fn targets(&self, side: u32, device: Device) -> Result<StyleTargets> {
        let largest = *self.info.sides.last().ok_or_else(|| Error::invalid("style", "the pack holds no sizes"))?;
        let key = side.min(largest);
        let grams = self.grams.get(&key).ok_or_else(|| Error::Pack {
            path: PathBuf::from(&self.info.name),
            reason: format!("holds no targets for style size {key}"),
        })?;
        let grams =
            grams.iter().map(|g| g.f_to_device(device)?.f_to_kind(Kind::Float)).collect::<Result<Vec<_>, _>>()?;
        Ok(StyleTargets { grams })
    }
}

/// The header of a safetensors file open at its start, read without its
/// tensors: its length, its JSON, and its string metadata. `what` names the
/// kind of file in messages ("a style pack"); `error` makes the error.
pub(crate) fn read_header(
    file: &mut File,
    max_header_bytes: u64,
    what: &str,
    error: impl Fn(String) -> Error,
) -> Result<(u64, serde_json::Value, HashMap<String, String>)> {
    let mut length = [0u8; 8];
    file.read_exact(&mut length).map_err(|_| error(format!("not {what} (too short)")))?;
    let header_len = u64::from_le_bytes(length);
    if header_len > max_header_bytes {
        return Err(error(format!("not {what} (implausible header size)")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|_| error("truncated header".into()))?;
    let json: serde_json::Value = serde_json::from_slice(&header).map_err(|e| error(format!("not {what} ({e})")))?;
    let metadata = json
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    Ok((header_len, json, metadata))
}

/// A safetensors file with its JSON header's keys (and the metadata's) in
/// sorted order: the serialiser writes them in hash-map order, which differs
/// from one map to the next, so that the same pack came out with other
/// bytes each time. The header stays padded with spaces to a multiple of 8
/// bytes; the data, whose offsets count from its own start, is unchanged.
pub(crate) fn canonical_header(file: &[u8]) -> Option<Vec<u8>> {
    let length = usize::try_from(u64::from_le_bytes(file.get(..8)?.try_into().ok()?)).ok()?;
    let header = file.get(8..8usize.checked_add(length)?)?;
    let mut entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    if let Some(metadata) = entries.get_mut("__metadata__") {
        let sorted: BTreeMap<String, serde_json::Value> = serde_json::from_value(metadata.take()).ok()?;
        *metadata = serde_json::to_value(sorted).ok()?;
    }
    let mut json = serde_json::to_vec(&entries).ok()?;
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(file.len() + 8);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&file[8 + length..]);
    Some(out)
}

/// The metadata key of a pack's digest.
const DIGEST_KEY: &str = "data_sha256";

/// SHA-256 (hex) over a pack's contents: each metadata entry but the digest
/// itself, sorted by key, as `key=value\n`; then each tensor in name order,
/// as its name, dtype and shape on one line followed by its bytes. A
/// single flipped bit anywhere a run reads changes it.
pub fn data_digest<'a>(
    metadata: &HashMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut hasher = Sha256::new();
    let sorted: BTreeMap<&String, &String> = metadata.iter().filter(|(k, _)| k.as_str() != DIGEST_KEY).collect();
    for (key, value) in sorted {
        hasher.update(format!("{key}={value}\n").as_bytes());
    }
    let mut tensors: Vec<_> = tensors.collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape, data) in tensors {
        hasher.update(format!("{name} {dtype:?} {shape:?}\n").as_bytes());
        hasher.update(data);
    }
    sha256_hex(hasher)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn metadata_of(info: &PackInfo) -> HashMap<String, String> {
    let join = |v: Vec<String>| v.join(",");
    HashMap::from([
        ("format".to_string(), PACK_FORMAT.to_string()),
        ("format_version".to_string(), info.format_version.to_string()),
        ("name".to_string(), info.name.clone()),
        ("model_sha256".to_string(), info.model_sha256.clone()),
        ("source_sha256".to_string(), info.source_sha256.join(",")),
        ("blend".to_string(), join(info.blend.iter().map(|b| b.to_string()).collect())),
        ("layers".to_string(), info.layers.join(",")),
        ("sides".to_string(), join(info.sides.iter().map(|s| s.to_string()).collect())),
        ("library_version".to_string(), info.library_version.clone()),
    ])
}

fn info_from(metadata: &HashMap<String, String>, thumbnail: Vec<u8>, path: &Path) -> Result<PackInfo> {
    let field = |key: &str| metadata.get(key).ok_or_else(|| pack_error(path, format!("metadata lacks `{key}`")));
    if field("format")? != PACK_FORMAT {
        return Err(pack_error(path, format!("not a style pack (format is not `{PACK_FORMAT}`)")));
    }
    let version: u32 =
        field("format_version")?.parse().map_err(|_| pack_error(path, "format_version is not a number"))?;
    if version > PACK_FORMAT_VERSION {
        return Err(pack_error(
            path,
            format!(
                "made by a newer styletransfer (pack format {version}; this library reads up to {PACK_FORMAT_VERSION})"
            ),
        ));
    }
    if version == 0 {
        return Err(pack_error(path, "format_version 0 does not exist"));
    }
    let layers: Vec<String> = field("layers")?.split(',').map(str::to_string).collect();
    if layers != STYLE_LAYER_NAMES {
        return Err(pack_error(path, format!("holds layers {layers:?}, expected {STYLE_LAYER_NAMES:?}")));
    }
    let sides: Vec<u32> = field("sides")?
        .split(',')
        .map(|s| s.parse().map_err(|_| pack_error(path, format!("bad style size `{s}`"))))
        .collect::<Result<_>>()?;
    if sides.is_empty() || sides.windows(2).any(|w| w[0] >= w[1]) || sides.iter().any(|s| !LADDER.contains(s)) {
        return Err(pack_error(path, "style sizes must be ascending ladder sizes"));
    }
    let blend: Vec<f64> = field("blend")?
        .split(',')
        .map(|s| s.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0))
        .collect::<Option<_>>()
        .ok_or_else(|| pack_error(path, "bad blend weights"))?;
    let source_sha256: Vec<String> = field("source_sha256")?.split(',').map(str::to_string).collect();
    if blend.len() != source_sha256.len() {
        return Err(pack_error(path, "blend weights and sources do not match"));
    }
    if thumbnail.len() > MAX_THUMBNAIL_BYTES || !thumbnail.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(pack_error(path, "the thumbnail is not a PNG of at most 64 KiB"));
    }
    Ok(PackInfo {
        name: field("name")?.clone(),
        model_sha256: field("model_sha256")?.clone(),
        source_sha256,
        blend,
        layers,
        sides,
        library_version: field("library_version")?.clone(),
        format_version: version,
        thumbnail,
    })
}

/// One pack found in the style folders.
#[derive(Clone, Debug)]
pub struct PackEntry {
    /// Its display name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// Its thumbnail (PNG bytes).
    pub thumbnail: Vec<u8>,
}

/// The style folders, in search order: each entry of `ST_STYLE_PATH`
/// (colon-separated), then `$XDG_DATA_HOME/styletransfer/styles` (default
/// `~/.local/share/styletransfer/styles`), then `installed` if given (the
/// installed `share/styletransfer/styles`).
pub fn style_dirs(installed: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("ST_STYLE_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(data_home) = data_home {
        dirs.push(data_home.join("styletransfer/styles"));
    }
    if let Some(installed) = installed {
        dirs.push(installed.to_path_buf());
    }
    dirs
}

/// Every readable pack in `dirs`, sorted by name; a name found in an
/// earlier folder hides the same name in later ones. Unreadable files are
/// skipped.
pub fn list_packs(dirs: &[PathBuf]) -> Vec<PackEntry> {
    let mut found: Vec<PackEntry> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == PACK_EXTENSION))
            .collect();
        paths.sort();
        for path in paths {
            if let Ok(info) = StylePack::read_info(&path) {
                if !found.iter().any(|f| f.name == info.name) {
                    found.push(PackEntry { name: info.name, path, thumbnail: info.thumbnail });
                }
            }
        }
    }
    found.sort_by_key(|entry| entry.name.to_lowercase());
    found
}
