//! A fast MQTT 3.1.1 publisher for load tests and the bench: one TCP connection, QoS 0
//! PUBLISH packets written by hand (the format is a few bytes of header), paced to a rate.
//! `mosquitto_pub` starts a process per message, or takes one topic for all of `-l`'s lines.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// MQTT's variable-length "remaining length".
fn push_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

fn push_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A QoS 0 PUBLISH packet.
pub fn publish_packet(topic: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x30);
    push_len(2 + topic.len() + payload.len(), out);
    push_str(topic.as_bytes(), out);
    out.extend_from_slice(payload);
}

pub struct Flood {
    stream: TcpStream,
}

impl Flood {
    /// Connects with a clean session and waits for the CONNACK.
    pub fn connect(port: u16, client_id: &str) -> Flood {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
        let mut body = Vec::new();
        push_str(b"MQTT", &mut body);
        body.extend_from_slice(&[4, 0x02, 0, 60]);
        push_str(client_id.as_bytes(), &mut body);
        let mut packet = vec![0x10];
        push_len(body.len(), &mut packet);
        packet.extend_from_slice(&body);
        stream.write_all(&packet).unwrap();
        let mut ack = [0u8; 4];
        stream.read_exact(&mut ack).expect("CONNACK");
        assert_eq!(ack, [0x20, 2, 0, 0], "the broker refused the connection");
        Flood { stream }
    }

    /// Publishes `total` messages at `per_second` (in 10 ms slices), each from `message(i)`:
    /// (topic, payload). Returns how many were written and how long it took.
    pub fn run(
        &mut self,
        total: u64,
        per_second: u64,
        mut message: impl FnMut(u64, &mut String, &mut Vec<u8>),
    ) -> (u64, Duration) {
        let start = Instant::now();
        let per_slice = (per_second / 100).max(1);
        let mut packets = Vec::with_capacity(1 << 20);
        let (mut topic, mut payload) = (String::new(), Vec::new());
        let mut sent = 0u64;
        let mut slice = 0u64;
        while sent < total {
            packets.clear();
            for _ in 0..per_slice.min(total - sent) {
                topic.clear();
                payload.clear();
                message(sent, &mut topic, &mut payload);
                publish_packet(&topic, &payload, &mut packets);
                sent += 1;
            }
            self.stream.write_all(&packets).expect("publish");
            slice += 1;
            let due = start + Duration::from_millis(slice * 10);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (sent, start.elapsed())
    }

    /// DISCONNECT.
    pub fn close(mut self) {
        let _ = self.stream.write_all(&[0xe0, 0]);
    }
}
