//! Images: what a file is (from its bytes, never from its name), how large, whether animated;
//! and the resized, converted variants the CDN serves (`?size=` and the extension).

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngDecoder, PngEncoder};
use image::codecs::webp::WebPDecoder;
use image::{
    AnimationDecoder, DynamicImage, Frame, Frames, ImageDecoder, ImageFormat, ImageReader, Limits,
};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an image this server reads")]
    Unsupported,
    #[error("image too large to decode ({0} pixels)")]
    TooLarge(u64),
    #[error("image: {0}")]
    Codec(#[from] image::ImageError),
}

/// The image formats served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
}

impl Format {
    /// The format a CDN path's extension asks for.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "gif" => Some(Self::Gif),
            "webp" => Some(Self::WebP),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::WebP => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Gif => ImageFormat::Gif,
            Self::WebP => ImageFormat::WebP,
        }
    }
}

/// The image format of `bytes`, from their magic numbers.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else {
        None
    }
}

/// What an image file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub animated: bool,
}

/// The format, size and animation of an image file, from its headers; `None` when it is not
/// one. A file whose pixels are broken can pass: [`decodes`] reads them all.
pub fn inspect(bytes: &[u8]) -> Option<ImageInfo> {
    let format = sniff(bytes)?;
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format.image_format())
        .into_dimensions()
        .ok()?;
    let animated = match format {
        Format::Gif => gif_images(bytes, 2)? > 1,
        Format::Png => PngDecoder::new(Cursor::new(bytes)).ok()?.is_apng().ok()?,
        Format::WebP => WebPDecoder::new(Cursor::new(bytes)).ok()?.has_animation(),
        Format::Jpeg => false,
    };
    Some(ImageInfo {
        format,
        width,
        height,
        animated,
    })
}

/// How many images (frames) a GIF holds, counting up to `most`, from its block structure
/// alone: no pixel is decoded, so a huge canvas or a frame bomb costs nothing here. `None` when
/// the blocks are broken.
fn gif_images(bytes: &[u8], most: usize) -> Option<usize> {
    /// The length of a colour table a packed field announces, if any.
    fn color_table(packed: u8) -> usize {
        if packed & 0x80 == 0 {
            0
        } else {
            3 << ((packed & 7) + 1)
        }
    }
    /// The position after a run of data sub-blocks starting at `at`.
    fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Option<usize> {
        loop {
            let size = usize::from(*bytes.get(at)?);
            at += 1 + size;
            if size == 0 {
                return Some(at);
            }
        }
    }
    // Header (6), logical screen descriptor (7), then the global colour table.
    let mut at = 13 + color_table(*bytes.get(10)?);
    let mut images = 0;
    while images < most {
        match *bytes.get(at)? {
            0x2c => {
                // Image descriptor (10 with its introducer), local colour table, LZW code size.
                let packed = *bytes.get(at + 9)?;
                at = skip_sub_blocks(bytes, at + 10 + color_table(packed) + 1)?;
                images += 1;
            }
            0x21 => at = skip_sub_blocks(bytes, at + 2)?,
            0x3b => break,
            _ => return None,
        }
    }
    Some(images)
}

/// What decoding one image may cost: the pixels of its canvas, and of all its frames together
/// (an animated GIF's frames are each decoded to the full canvas).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub pixels: u64,
    pub animation_pixels: u64,
}

impl Budget {
    /// The decoders' own allocation limit: the canvas at 8 bytes a pixel (16-bit RGBA) and
    /// some room for their working buffers.
    fn limits(self) -> Limits {
        let mut limits = Limits::default();
        limits.max_alloc = Some(self.pixels.saturating_mul(8).saturating_add(16 << 20));
        limits
    }

    fn reader(self, bytes: &[u8], format: Format) -> ImageReader<Cursor<&[u8]>> {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
        reader.limits(self.limits());
        reader
    }

    /// The frames of a GIF, decoded one at a time; `TooLarge` (before any is decoded) when
    /// the canvas, or all frames together (each decodes to the whole canvas), hold more pixels
    /// than allowed.
    fn gif_frames(self, bytes: &[u8]) -> Result<Frames<'_>, ImageError> {
        let mut decoder = GifDecoder::new(Cursor::new(bytes))?;
        let (width, height) = decoder.dimensions();
        let canvas = u64::from(width) * u64::from(height);
        if canvas > self.pixels {
            return Err(ImageError::TooLarge(canvas));
        }
        let most = usize::try_from(self.animation_pixels / canvas.max(1)).unwrap_or(usize::MAX);
        let frames = gif_images(bytes, most.saturating_add(1)).ok_or(ImageError::Unsupported)?;
        let all = canvas.saturating_mul(u64::try_from(frames).unwrap_or(u64::MAX));
        if all > self.animation_pixels {
            return Err(ImageError::TooLarge(all));
        }
        decoder.set_limits(self.limits())?;
        Ok(decoder.into_frames())
    }
}

/// Whether the whole image decodes within `budget`: for images that will be served resized
/// (avatars, icons, emojis, stickers), checked once when they arrive. Every frame of a GIF is
/// decoded (one at a time) and counted.
pub fn decodes(bytes: &[u8], budget: Budget) -> bool {
    let Some(info) = inspect(bytes) else {
        return false;
    };
    if u64::from(info.width) * u64::from(info.height) > budget.pixels {
        return false;
    }
    if info.format == Format::Gif {
        return budget
            .gif_frames(bytes)
            .is_ok_and(|mut frames| frames.all(|frame| frame.is_ok()));
    }
    budget.reader(bytes, info.format).decode().is_ok()
}

/// `bytes` (an image) as `to`, fitted within `size`×`size` when given (never enlarged). An
/// animated GIF asked for as a GIF stays animated, resized frame by frame; other conversions
/// take the first frame.
pub fn convert(
    bytes: &[u8],
    size: Option<u32>,
    to: Format,
    budget: Budget,
) -> Result<Vec<u8>, ImageError> {
    let from = sniff(bytes).ok_or(ImageError::Unsupported)?;
    let (width, height) = budget.reader(bytes, from).into_dimensions()?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > budget.pixels {
        return Err(ImageError::TooLarge(pixels));
    }
    let target = size.filter(|s| *s < width.max(height));
    if target.is_none() && from == to {
        return Ok(bytes.to_vec());
    }
    if from == Format::Gif && to == Format::Gif {
        return gif(budget.gif_frames(bytes)?, target);
    }
    let mut image = budget.reader(bytes, from).decode()?;
    if let Some(size) = target {
        image = image.thumbnail(size, size);
    }
    encode(&image, to)
}

/// A GIF of `frames`, each fitted within `target` as it comes (only one full canvas is held).
fn gif(frames: Frames<'_>, target: Option<u32>) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder.set_repeat(Repeat::Infinite)?;
        for frame in frames {
            let frame = frame?;
            let frame = match target {
                None => frame,
                Some(size) => {
                    let delay = frame.delay();
                    let buffer = DynamicImage::ImageRgba8(frame.into_buffer())
                        .thumbnail(size, size)
                        .to_rgba8();
                    Frame::from_parts(buffer, 0, 0, delay)
                }
            };
            encoder.encode_frame(frame)?;
        }
    }
    Ok(out)
}

/// One still image in `to`: PNG fast-compressed, JPEG at quality 90, WebP lossless.
pub fn encode(image: &DynamicImage, to: Format) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    match to {
        Format::Png => {
            let encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
            if image.color().has_alpha() {
                image.to_rgba8().write_with_encoder(encoder)?;
            } else {
                image.to_rgb8().write_with_encoder(encoder)?;
            }
        }
        Format::Jpeg => {
            image
                .to_rgb8()
                .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))?;
        }
        Format::WebP | Format::Gif => {
            DynamicImage::ImageRgba8(image.to_rgba8())
                .write_to(&mut Cursor::new(&mut out), to.image_format())?;
        }
    }
    Ok(out)
}

/// A Content-Type for a stored file: from its bytes when it is an image, else from its name's
/// extension for the common kinds, else `application/octet-stream`.
pub fn content_type(bytes: &[u8], filename: &str) -> &'static str {
    if let Some(format) = sniff(bytes) {
        return format.content_type();
    }
    let extension = filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" | "log" | "md" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    const ROOMY: Budget = Budget {
        pixels: 1 << 24,
        animation_pixels: 1 << 26,
    };
    const TINY: Budget = Budget {
        pixels: 100,
        animation_pixels: 1 << 26,
    };

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_fn(width, height, |x, y| Rgba([x as u8, y as u8, 128, 255]));
        encode(&DynamicImage::ImageRgba8(image), Format::Png).unwrap()
    }

    #[test]
    fn variants_fit_the_size_and_take_the_format() {
        let original = png(256, 128);
        let info = inspect(&original).unwrap();
        assert_eq!(
            (info.format, info.width, info.height, info.animated),
            (Format::Png, 256, 128, false)
        );
        let small = convert(&original, Some(64), Format::WebP, ROOMY).unwrap();
        let info = inspect(&small).unwrap();
        assert_eq!(
            (info.format, info.width, info.height),
            (Format::WebP, 64, 32)
        );
        let same = convert(&original, Some(1024), Format::Jpeg, ROOMY).unwrap();
        assert_eq!(inspect(&same).unwrap().width, 256);
        assert!(matches!(
            convert(&original, None, Format::Png, TINY),
            Err(ImageError::TooLarge(_))
        ));
        assert!(inspect(b"not an image at all").is_none());
        assert!(!decodes(b"GIF89a but not really", ROOMY));
        assert!(decodes(&original, ROOMY));
        assert!(!decodes(&original, TINY), "too many pixels");
        assert!(
            !decodes(&original[..original.len() / 2], ROOMY),
            "truncated"
        );
    }

    #[test]
    fn animated_gifs_stay_animated() {
        let frames =
            (0..3).map(|i| Frame::new(RgbaImage::from_pixel(32, 32, Rgba([i * 80, 0, 0, 255]))));
        let mut gif = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut gif);
            encoder.encode_frames(frames).unwrap();
        }
        assert!(inspect(&gif).unwrap().animated);
        let smaller = convert(&gif, Some(16), Format::Gif, ROOMY).unwrap();
        let info = inspect(&smaller).unwrap();
        assert!(info.animated);
        assert_eq!(info.width, 16);
        let still = convert(&gif, Some(16), Format::Png, ROOMY).unwrap();
        assert!(!inspect(&still).unwrap().animated);
    }

    #[test]
    fn gif_frames_are_counted_without_decoding() {
        let one = encode(
            &DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([1, 2, 3, 255]))),
            Format::Gif,
        )
        .unwrap();
        assert_eq!(gif_images(&one, 5), Some(1));
        assert_eq!(gif_images(&one[..one.len() - 4], 5), None, "truncated");
        // A canvas of 65535×65535 announced in a few bytes is inspected, never allocated.
        let mut huge = one.clone();
        huge[6..10].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let info = inspect(&huge).unwrap();
        assert_eq!(
            (info.width, info.height, info.animated),
            (65535, 65535, false)
        );
        assert!(!decodes(&huge, ROOMY));
    }

    #[test]
    fn frames_are_counted_against_the_animation_budget() {
        // 40 frames of 64×64: 163,840 pixels of frames in all.
        let frames =
            (0..40u8).map(|i| Frame::new(RgbaImage::from_pixel(64, 64, Rgba([i, 0, 0, 255]))));
        let mut gif = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut gif);
            encoder.encode_frames(frames).unwrap();
        }
        let tight = Budget {
            pixels: 1 << 24,
            animation_pixels: 100_000,
        };
        assert_eq!(gif_images(&gif, 100), Some(40));
        assert_eq!(gif_images(&gif, 2), Some(2));
        assert!(decodes(&gif, ROOMY));
        assert!(!decodes(&gif, tight), "too many frames");
        assert!(matches!(
            convert(&gif, Some(16), Format::Gif, tight),
            Err(ImageError::TooLarge(_))
        ));
        assert!(convert(&gif, Some(16), Format::Gif, ROOMY).is_ok());
        // Unchanged when nothing is to change.
        assert_eq!(convert(&gif, None, Format::Gif, ROOMY).unwrap(), gif);
    }
}
