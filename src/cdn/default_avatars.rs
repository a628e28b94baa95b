//! The default avatars at `/embed/avatars/{0-5}.png`: drawn by this code (a plain figure on
//! one of six colours), made once at start and kept in memory.

use bytes::Bytes;
use image::{DynamicImage, Rgba, RgbaImage};

use super::imaging::{encode, Format};

/// How many there are: `/embed/avatars/0.png` … `5.png`.
pub const COUNT: usize = 6;
const SIZE: u32 = 256;
const COLOURS: [[u8; 3]; COUNT] = [
    [0x58, 0x65, 0xf2],
    [0x75, 0x7e, 0x8a],
    [0x3b, 0xa5, 0x5c],
    [0xfa, 0xa6, 0x1a],
    [0xed, 0x42, 0x45],
    [0xeb, 0x45, 0x9e],
];

/// The six PNGs.
pub fn draw_all() -> Vec<Bytes> {
    COLOURS
        .iter()
        .filter_map(|colour| {
            encode(&DynamicImage::ImageRgba8(draw(*colour)), Format::Png)
                .ok()
                .map(Bytes::from)
        })
        .collect()
}

/// A white head and shoulders on a coloured disc, transparent outside it.
fn draw([r, g, b]: [u8; 3]) -> RgbaImage {
    let centre = SIZE as f32 / 2.0;
    RgbaImage::from_fn(SIZE, SIZE, |x, y| {
        let (x, y) = (x as f32 + 0.5, y as f32 + 0.5);
        let inside = |cx: f32, cy: f32, rx: f32, ry: f32| {
            let (dx, dy) = ((x - cx) / rx, (y - cy) / ry);
            dx * dx + dy * dy <= 1.0
        };
        if !inside(centre, centre, centre, centre) {
            return Rgba([0, 0, 0, 0]);
        }
        let head = inside(centre, 100.0, 42.0, 42.0);
        let shoulders = (150.0..=200.0).contains(&y) && inside(centre, 200.0, 72.0, 52.0);
        if head || shoulders {
            Rgba([255, 255, 255, 255])
        } else {
            Rgba([r, g, b, 255])
        }
    })
}
