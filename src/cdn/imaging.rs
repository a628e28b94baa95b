//! Images: what a file is (from its bytes, never from its name), how large, whether animated;
//! and the resized, converted variants the CDN serves (`?size=` and the extension).

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngDecoder, PngEncoder};
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, DynamicImage, Frame, ImageFormat, ImageReader};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an image this server reads")]
    Unsupported,
    #[error("image too large to convert ({0} pixels)")]
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
        Format::Gif => {
            GifDecoder::new(Cursor::new(bytes))
                .ok()?
                .into_frames()
                .take(2)
                .count()
                > 1
        }
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

/// Whether the whole image decodes (and has at most `max_pixels`): for images that will be
/// served resized (avatars, icons, emojis, stickers), checked once when they arrive.
pub fn decodes(bytes: &[u8], max_pixels: u64) -> bool {
    let Some(info) = inspect(bytes) else {
        return false;
    };
    if u64::from(info.width) * u64::from(info.height) > max_pixels {
        return false;
    }
    ImageReader::with_format(Cursor::new(bytes), info.format.image_format())
        .decode()
        .is_ok()
}

/// `bytes` (an image) as `to`, fitted within `size`×`size` when given (never enlarged). An
/// animated GIF asked for as a GIF stays animated; other conversions take the first frame.
pub fn convert(
    bytes: &[u8],
    size: Option<u32>,
    to: Format,
    max_pixels: u64,
) -> Result<Vec<u8>, ImageError> {
    let from = sniff(bytes).ok_or(ImageError::Unsupported)?;
    let (width, height) =
        ImageReader::with_format(Cursor::new(bytes), from.image_format()).into_dimensions()?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(ImageError::TooLarge(pixels));
    }
    let target = size.filter(|s| *s < width.max(height));
    if from == Format::Gif && to == Format::Gif {
        let frames = GifDecoder::new(Cursor::new(bytes))?
            .into_frames()
            .collect_frames()?;
        if frames.len() > 1 {
            return animated_gif(frames, target);
        }
    }
    let mut image = ImageReader::with_format(Cursor::new(bytes), from.image_format()).decode()?;
    if let Some(size) = target {
        image = image.thumbnail(size, size);
    }
    encode(&image, to)
}

fn animated_gif(frames: Vec<Frame>, target: Option<u32>) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder.set_repeat(Repeat::Infinite)?;
        let frames = frames.into_iter().map(|frame| match target {
            None => frame,
            Some(size) => {
                let delay = frame.delay();
                let buffer = DynamicImage::ImageRgba8(frame.into_buffer())
                    .thumbnail(size, size)
                    .to_rgba8();
                Frame::from_parts(buffer, 0, 0, delay)
            }
        });
        encoder.encode_frames(frames)?;
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
        let small = convert(&original, Some(64), Format::WebP, 1 << 24).unwrap();
        let info = inspect(&small).unwrap();
        assert_eq!(
            (info.format, info.width, info.height),
            (Format::WebP, 64, 32)
        );
        let same = convert(&original, Some(1024), Format::Jpeg, 1 << 24).unwrap();
        assert_eq!(inspect(&same).unwrap().width, 256);
        assert!(matches!(
            convert(&original, None, Format::Png, 100),
            Err(ImageError::TooLarge(_))
        ));
        assert!(inspect(b"not an image at all").is_none());
        assert!(!decodes(b"GIF89a but not really", 1 << 24));
        assert!(decodes(&original, 1 << 24));
        assert!(!decodes(&original, 100), "too many pixels");
        assert!(
            !decodes(&original[..original.len() / 2], 1 << 24),
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
        let smaller = convert(&gif, Some(16), Format::Gif, 1 << 24).unwrap();
        let info = inspect(&smaller).unwrap();
        assert!(info.animated);
        assert_eq!(info.width, 16);
        let still = convert(&gif, Some(16), Format::Png, 1 << 24).unwrap();
        assert!(!inspect(&still).unwrap().animated);
    }
}
