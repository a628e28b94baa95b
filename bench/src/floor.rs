//! `spacebar-bench floor`: what this machine allows for the socket write of one gateway
//! delivery. One thread writes WebSocket-framed MESSAGE_CREATEs round-robin over many loopback
//! TCP connections (TCP_NODELAY, as the server sets it), one `write` per frame; a second mode
//! writes `--batch` frames to one connection with one `writev`. The CPU per frame of the writing
//! thread (which on loopback also runs the receiver's TCP path and wakes the reader), of the
//! reading thread and of the whole process is the floor under the server's CPU per delivery.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_codec::Encoder;
use clap::Args;

use crate::{sys, BoxError};

#[derive(Args)]
pub struct FloorArgs {
    /// Loopback TCP connections the frames are spread over, round-robin.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Bytes of each frame on the wire: the WebSocket header and a MESSAGE_CREATE's JSON.
    #[arg(long, default_value_t = 600)]
    frame_bytes: usize,
    /// Seconds each mode writes.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Frames written per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Frames per `writev` to one connection in the second mode (1: no second mode).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Pin the writing thread to this CPU (whether writer and reader share a core changes the
    /// cost: cross-core wake-ups and cache traffic).
    #[arg(long)]
    writer_cpu: Option<usize>,
    /// Pin the reading thread to this CPU.
    #[arg(long)]
    reader_cpu: Option<usize>,
}

pub fn run(args: FloorArgs) -> Result<(), BoxError> {
    if args.connections == 0 || args.batch == 0 || args.duration == 0 {
        return Err("--connections, --batch and --duration must be at least 1".into());
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err("--rate must be positive".into());
    }
    sys::ensure_open_files(2 * args.connections + 64, args.connections, "--connections")?;
    let frame = ws_frame(args.frame_bytes)?;
    let (mut writers, readers) = connect(args.connections)?;
    if let Some(cpu) = args.writer_cpu {
        pin(cpu)?;
    }
    let reader = Reader::spawn(readers, args.reader_cpu)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "{} loopback connections, {}-byte frames, {} s per mode; load average {}",
        args.connections,
        frame.len(),
        args.duration,
        load.join(" ")
    );
    for batch in std::iter::once(1).chain((args.batch > 1).then_some(args.batch)) {
        let how = match batch {
            1 => "one write per frame".to_string(),
            k => format!("{k} frames per writev"),
        };
        let m = write_mode(&mut writers, &frame, batch, &args, &reader)?;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / m.frames as f64;
        println!(
            "{how}: {} frames, {:.0} frames/s; CPU per frame: writer {:.2} µs ({:.0}% of a core), \
             reader {:.2} µs, whole process {:.2} µs",
            m.frames,
            m.frames as f64 / m.wall.as_secs_f64(),
            per(m.writer),
            100.0 * m.writer.as_secs_f64() / m.wall.as_secs_f64(),
            per(m.reader),
            per(m.process),
        );
    }
    reader.stop()
}

/// A server-to-client text frame (unmasked, as actix-http's codec writes it) of `bytes` bytes
/// on the wire, carrying a MESSAGE_CREATE dispatch whose content is padded to fit.
fn ws_frame(bytes: usize) -> Result<Vec<u8>, BoxError> {
    let json = |content: &str| {
        // The fields every MESSAGE_CREATE has, so short frames still fit; `content` pads.
        serde_json::json!({"t": "MESSAGE_CREATE", "s": 123456, "op": 0, "d": {
            "id": "1315234567890123456", "channel_id": "1315234567890120001",
            "guild_id": "1315234567890120000",
            "author": {"id": "1315234567890120077", "username": "member0042"},
            "content": content, "timestamp": "2026-12-06T12:00:00.000000+00:00"}})
        .to_string()
    };
    // The JSON is over 125 bytes, so the header is 4 bytes (2 of them the length).
    let least = 4 + json("").len();
    let content = bytes
        .checked_sub(least)
        .filter(|_| bytes <= 65_535)
        .ok_or_else(|| format!("--frame-bytes must be {least} to 65535"))?;
    let mut frame = bytes::BytesMut::new();
    actix_http::ws::Codec::new().encode(
        actix_http::ws::Message::Text(json(&"x".repeat(content)).into()),
        &mut frame,
    )?;
    Ok(frame.to_vec())
}

/// `n` connected pairs: the accepted ends (written, TCP_NODELAY) and the connecting ends
/// (read, non-blocking). One accept after each connect, so the backlog never fills.
fn connect(n: usize) -> io::Result<(Vec<TcpStream>, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (mut writers, mut readers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let reader = TcpStream::connect(addr)?;
        reader.set_nonblocking(true)?;
        let (writer, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        readers.push(reader);
        writers.push(writer);
    }
    Ok((writers, readers))
}

/// One thread draining every connection through epoll with large reads, so the receiving
/// side's CPU is one thread's clock.
struct Reader {
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    clock: libc::clockid_t,
    thread: JoinHandle<io::Result<()>>,
}

impl Reader {
    fn spawn(streams: Vec<TcpStream>, cpu: Option<usize>) -> io::Result<Self> {
        // SAFETY: epoll_create1 has no preconditions; a non-negative result is a new fd we own.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `epoll` is a valid fd owned by nothing else.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        for (i, s) in streams.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both fds are open and `ev` is a valid epoll_event.
            let rc = unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    s.as_raw_fd(),
                    &mut ev,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (got, halt) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            cpu.map_or(Ok(()), pin)?;
            drain(&epoll, streams, &got, &halt)
        });
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the thread is alive (not joined) and `clock` is writable.
        if unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) } != 0 {
            return Err(io::Error::other("no CPU clock for the reader thread"));
        }
        Ok(Self {
            received,
            stop,
            clock,
            thread,
        })
    }

    fn stop(self) -> Result<(), BoxError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => Ok(result?),
            Err(_) => Err("the reader thread panicked".into()),
        }
    }
}

fn drain(
    epoll: &OwnedFd,
    mut streams: Vec<TcpStream>,
    received: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `events` has room for `events.len()` entries; the timeout lets `stop` be seen.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                100,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter().take(n as usize) {
            let Some(stream) = streams.get_mut(ev.u64 as usize) else {
                continue;
            };
            match stream.read(&mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => _ = received.fetch_add(k as u64, Ordering::Relaxed),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::other(format!("no CPU {cpu}")));
    }
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` is within it; pid 0 is the calling thread.
    unsafe {
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn cpu_clock(clock: libc::clockid_t) -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// One mode's result: frames written, wall time of the writing, CPU of each part.
struct Mode {
    frames: u64,
    wall: Duration,
    writer: Duration,
    reader: Duration,
    process: Duration,
}

/// Writes `batch` frames per call, round-robin over `writers`, for `--duration` seconds (paced
/// to `--rate` if given), then waits until the reader has every byte before reading its clock.
fn write_mode(
    writers: &mut [TcpStream],
    frame: &[u8],
    batch: usize,
    args: &FloorArgs,
    reader: &Reader,
) -> Result<Mode, BoxError> {
    let whole = frame.repeat(batch);
    let slices = vec![IoSlice::new(frame); batch];
    let (writer0, reader0) = (
        cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)?,
        cpu_clock(reader.clock)?,
    );
    let process0 = cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)?;
    let received0 = reader.received.load(Ordering::Relaxed);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut writes = 0u64;
    let mut now = start;
    while now < end {
        let socket = &mut writers[writes as usize % writers.len()];
        let n = match batch {
            1 => socket.write(frame)?,
            _ => socket.write_vectored(&slices)?,
        };
        // A blocking socket takes it all unless a signal interrupts; finish the rest if so.
        socket.write_all(&whole[n..])?;
        writes += 1;
        now = Instant::now();
        if let Some(rate) = args.rate {
            // Sleep only when a millisecond ahead: sleeps are coarse and spinning costs CPU.
            let due = start + Duration::from_secs_f64((writes * batch as u64) as f64 / rate);
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
                now = Instant::now();
            }
        }
    }
    let wall = start.elapsed();
    let writer = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)? - writer0;
    let frames = writes * batch as u64;
    let expected = received0 + frames * frame.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.received.load(Ordering::Relaxed) < expected {
        if Instant::now() > deadline {
            return Err("the reader did not receive every frame within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(Mode {
        frames,
        wall,
        writer,
        reader: cpu_clock(reader.clock)? - reader0,
        process: cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)? - process0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_the_asked_size() -> Result<(), BoxError> {
        for bytes in [300, 600, 4000] {
            let frame = ws_frame(bytes)?;
            assert_eq!(frame.len(), bytes);
            // FIN + text, unmasked, 16-bit length.
            assert_eq!(frame[..2], [0x81, 126]);
            let json: serde_json::Value = serde_json::from_slice(&frame[4..])?;
            assert_eq!(json["t"], "MESSAGE_CREATE");
        }
        assert!(ws_frame(100).is_err());
        Ok(())
    }
}
