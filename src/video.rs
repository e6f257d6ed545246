//! Episode videos: RGB frames, a few drawing primitives, and animated GIF files.
//!
//! Environments that can draw themselves do so from an observation (see
//! `dcem_envs::render`); agents write an evaluation episode as `<run>/eval_episode.gif` with
//! [`write_gif`]. Frames use few flat colours, so each GIF frame gets an exact palette (a frame
//! with more than 256 colours is quantised by the `gif` crate's NeuQuant).

use std::path::Path;

use crate::error::{Error, Result};

/// An RGB picture, row-major, 3 bytes per pixel, `(0, 0)` the top-left corner.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// An RGB colour.
pub type Rgb = [u8; 3];

/// The largest side of a frame (GIF stores sides as 16-bit numbers).
pub const MAX_SIDE: usize = u16::MAX as usize;

impl Frame {
    /// A `width x height` frame filled with `colour`. Sides must be in `1..=MAX_SIDE`.
    pub fn new(width: usize, height: usize, colour: Rgb) -> Result<Self> {
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(Error::option(
                "frame size",
                format!("each side must be in 1..={MAX_SIDE}, got {width} x {height}"),
            ));
        }
        Ok(Self {
            width,
            height,
            rgb: colour.repeat(width * height),
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row-major RGB.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The colour at `(x, y)`, or None outside the frame.
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        })
    }

    /// Paints every pixel whose centre satisfies `inside`, within the box `[x0, x1] x [y0, y1]`
    /// (clipped to the frame).
    fn paint(&mut self, bounds: [f64; 4], colour: Rgb, inside: impl Fn(f64, f64) -> bool) {
        let [x0, y0, x1, y1] = bounds;
        let clip = |v: f64, n: usize| v.floor().clamp(0.0, n as f64) as usize;
        let (xa, xb) = (clip(x0, self.width), clip(x1 + 1.0, self.width));
        let (ya, yb) = (clip(y0, self.height), clip(y1 + 1.0, self.height));
        for y in ya..yb {
            for x in xa..xb {
                if inside(x as f64 + 0.5, y as f64 + 0.5) {
                    let i = 3 * (y * self.width + x);
                    self.rgb[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
    }

    /// Fills the axis-aligned rectangle with corners `(x0, y0)` and `(x1, y1)`.
    pub fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, colour: Rgb) {
        let (xa, xb) = (x0.min(x1), x0.max(x1));
        let (ya, yb) = (y0.min(y1), y0.max(y1));
        self.paint([xa, ya, xb, yb], colour, |x, y| {
            (xa..=xb).contains(&x) && (ya..=yb).contains(&y)
        });
    }

    /// Fills the disc of radius `r` around `(cx, cy)`.
    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, colour: Rgb) {
        self.paint([cx - r, cy - r, cx + r, cy + r], colour, |x, y| {
            (x - cx).powi(2) + (y - cy).powi(2) <= r * r
        });
    }

    /// Draws the segment from `a` to `b` with `width` and round ends (a capsule).
    pub fn segment(&mut self, a: [f64; 2], b: [f64; 2], width: f64, colour: Rgb) {
        let r = width / 2.0;
        let d = [b[0] - a[0], b[1] - a[1]];
        let len2 = (d[0] * d[0] + d[1] * d[1]).max(1e-12);
        let bounds = [
            a[0].min(b[0]) - r,
            a[1].min(b[1]) - r,
            a[0].max(b[0]) + r,
            a[1].max(b[1]) + r,
        ];
        self.paint(bounds, colour, |x, y| {
            let t = (((x - a[0]) * d[0] + (y - a[1]) * d[1]) / len2).clamp(0.0, 1.0);
            let (px, py) = (a[0] + t * d[0], a[1] + t * d[1]);
            (x - px).powi(2) + (y - py).powi(2) <= r * r
        });
    }
}

/// The frame as palette indices with its palette, when it has at most 256 colours.
fn exact_palette(frame: &Frame) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut palette: Vec<Rgb> = Vec::new();
    let mut last: Option<(Rgb, u8)> = None;
    let mut indices = Vec::with_capacity(frame.width * frame.height);
    for px in frame.rgb.chunks_exact(3) {
        let c = [px[0], px[1], px[2]];
        let i = match last {
            Some((lc, li)) if lc == c => li,
            _ => match palette.iter().position(|p| *p == c) {
                Some(i) => i as u8,
                None if palette.len() < 256 => {
                    palette.push(c);
                    (palette.len() - 1) as u8
                }
                None => return None,
            },
        };
        last = Some((c, i));
        indices.push(i);
    }
    Some((indices, palette.concat()))
}

/// Writes `frames` as a looping animated GIF at `fps` frames per second (the GIF delay is in
/// hundredths of a second, so the rate is rounded to that). All frames must have one size. The
/// file is written whole or not at all (a temporary file renamed over `path`).
pub fn write_gif(path: &Path, frames: &[Frame], fps: f64) -> Result<()> {
    let first = frames
        .first()
        .ok_or_else(|| Error::option("frames", "a video needs at least one frame"))?;
    if !(fps.is_finite() && fps > 0.0 && fps <= 100.0) {
        return Err(Error::option(
            "fps",
            format!("must be in (0, 100], got {fps}"),
        ));
    }
    if let Some(f) = frames
        .iter()
        .find(|f| (f.width, f.height) != (first.width, first.height))
    {
        return Err(Error::option(
            "frames",
            format!(
                "every frame must be {} x {}, one is {} x {}",
                first.width, first.height, f.width, f.height
            ),
        ));
    }
    let delay = (100.0 / fps).round().clamp(1.0, u16::MAX as f64) as u16;
    let (w, h) = (first.width as u16, first.height as u16);
    let mut bytes = Vec::new();
    {
        let gif_err = |e: gif::EncodingError| Error::Data(format!("GIF encoding: {e}"));
        let mut enc = gif::Encoder::new(&mut bytes, w, h, &[]).map_err(gif_err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
        for f in frames {
            let mut frame = match exact_palette(f) {
                Some((indices, palette)) => {
                    gif::Frame::from_palette_pixels(w, h, indices, palette, None)
                }
                None => gif::Frame::from_rgb_speed(w, h, &f.rgb, 10),
            };
            frame.delay = delay;
            enc.write_frame(&frame).map_err(gif_err)?;
        }
    }
    crate::run::atomic_write(path, &bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_drawn_where_asked() {
        let mut f = Frame::new(40, 30, [255; 3]).unwrap();
        f.rect(2.0, 2.0, 9.0, 5.0, [0, 0, 0]);
        f.disc(30.0, 20.0, 4.0, [200, 0, 0]);
        f.segment([0.0, 29.0], [39.0, 29.0], 2.0, [0, 0, 200]);
        assert_eq!(f.pixel(5, 3), Some([0, 0, 0]));
        assert_eq!(f.pixel(12, 3), Some([255; 3]));
        assert_eq!(f.pixel(30, 20), Some([200, 0, 0]));
        assert_eq!(f.pixel(30, 26), Some([255; 3]));
        assert_eq!(f.pixel(20, 29), Some([0, 0, 200]));
        assert_eq!(f.pixel(40, 0), None);
    }

    #[test]
    fn gif_round_trip_and_bad_input() {
        let dir = std::env::temp_dir().join(format!("dcem-video-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.gif");
        let mut frames = Vec::new();
        for i in 0..3 {
            let mut f = Frame::new(16, 8, [255; 3]).unwrap();
            f.rect(i as f64 * 4.0, 0.0, i as f64 * 4.0 + 3.0, 7.0, [10, 20, 30]);
            frames.push(f);
        }
        write_gif(&path, &frames, 20.0).unwrap();
        let mut dec = gif::DecodeOptions::new();
        dec.set_color_output(gif::ColorOutput::RGBA);
        let mut r = dec.read_info(std::fs::File::open(&path).unwrap()).unwrap();
        let mut n = 0;
        while let Some(frame) = r.read_next_frame().unwrap() {
            assert_eq!(frame.delay, 5);
            // Pixel (4n + 1, 1) is the rectangle's colour in frame n.
            let i = 4 * (4 * n + 1 + 16);
            assert_eq!(&frame.buffer[i..i + 3], &[10, 20, 30]);
            n += 1;
        }
        assert_eq!(n, 3);
        assert!(write_gif(&path, &[], 20.0).is_err());
        assert!(write_gif(&path, &frames, 0.0).is_err());
        let odd = vec![frames[0].clone(), Frame::new(8, 8, [0; 3]).unwrap()];
        assert!(write_gif(&path, &odd, 20.0).is_err());
        assert!(Frame::new(0, 8, [0; 3]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
