//! The `application/vnd.amazon.eventstream` framing of `InvokeWithResponseStream` replies:
//! each message is a prelude (total length, headers length, CRC32 of those eight bytes),
//! headers, a payload, and a CRC32 of everything before it. The AWS SDKs read exactly this.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

/// Header value type 7: a UTF-8 string with a 2-byte length.
const STRING: u8 = 7;
/// Prelude (12 bytes) plus the trailing CRC (4 bytes).
const OVERHEAD: usize = 16;

/// One event-stream message carrying `payload` with string `headers`.
pub(crate) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = OVERHEAD + headers_len + payload.len();
    let mut out = BytesMut::with_capacity(total);
    // Lengths fit: headers are a few fixed names, payloads are bounded chunks.
    out.put_u32(total as u32);
    out.put_u32(headers_len as u32);
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.put_u32(prelude_crc);
    for (name, value) in headers {
        out.put_u8(name.len() as u8);
        out.put_slice(name.as_bytes());
        out.put_u8(STRING);
        out.put_u16(value.len() as u16);
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// A `PayloadChunk` event: bytes the function streamed.
pub(crate) fn payload_chunk(data: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        data,
    )
}

/// The body of the `InvokeComplete` event that ends the stream.
#[derive(Debug, Default, Serialize)]
pub(crate) struct InvokeComplete {
    #[serde(rename = "ErrorCode", skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<String>,
    #[serde(rename = "ErrorDetails", skip_serializing_if = "Option::is_none")]
    pub(crate) error_details: Option<String>,
    #[serde(rename = "LogResult", skip_serializing_if = "Option::is_none")]
    pub(crate) log_result: Option<String>,
}

/// The `InvokeComplete` event.
pub(crate) fn invoke_complete(complete: &InvokeComplete) -> Bytes {
    let json = serde_json::to_vec(complete).unwrap_or_else(|_| b"{}".to_vec());
    message(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &json,
    )
}

/// A message read back: its string headers and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The headers, in order (only string values are kept).
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads every complete message at the front of `buf`, checking both CRCs; what is left
/// is an incomplete message. `Err` on a message that cannot be valid.
pub fn decode(buf: &mut BytesMut) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    while buf.len() >= 12 {
        let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let headers_len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        let prelude_crc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if crc32fast::hash(&buf[..8]) != prelude_crc {
            return Err("prelude CRC mismatch".into());
        }
        if total < OVERHEAD + headers_len {
            return Err(format!("message length {total} is too short"));
        }
        if buf.len() < total {
            break;
        }
        let message = buf.split_to(total).freeze();
        let crc = u32::from_be_bytes([
            message[total - 4],
            message[total - 3],
            message[total - 2],
            message[total - 1],
        ]);
        if crc32fast::hash(&message[..total - 4]) != crc {
            return Err("message CRC mismatch".into());
        }
        let mut headers = Vec::new();
        let mut at = 12;
        let end = 12 + headers_len;
        while at < end {
            let name_len = usize::from(message[at]);
            let name = message
                .get(at + 1..at + 1 + name_len)
                .ok_or("a header name runs past the headers")?;
            at += 1 + name_len;
            if message.get(at) != Some(&STRING) {
                return Err("only string headers are expected".into());
            }
            let len = message
                .get(at + 1..at + 3)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or("a header value length runs past the headers")?;
            let value = message
                .get(at + 3..at + 3 + len)
                .ok_or("a header value runs past the headers")?;
            at += 3 + len;
            headers.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
        out.push(Message {
            headers,
            payload: message.slice(end..total - 4),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_their_checksums() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&payload_chunk(b"hello"));
        wire.extend_from_slice(&payload_chunk(b""));
        wire.extend_from_slice(&invoke_complete(&InvokeComplete {
            error_code: Some("StreamInterrupted".into()),
            ..InvokeComplete::default()
        }));
        let extra = payload_chunk(b"partial");
        wire.extend_from_slice(&extra[..10]);
        let messages = decode(&mut wire).unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].header(":event-type"), Some("PayloadChunk"));
        assert_eq!(messages[0].payload, "hello");
        assert_eq!(messages[1].payload, "");
        assert_eq!(messages[2].header(":event-type"), Some("InvokeComplete"));
        assert_eq!(messages[2].payload, r#"{"ErrorCode":"StreamInterrupted"}"#);
        assert_eq!(wire.len(), 10, "an incomplete message stays in the buffer");
    }

    /// A known vector: the CRC32 (IEEE) of the empty message's prelude, as every
    /// event-stream implementation computes it.
    #[test]
    fn an_empty_message_has_the_known_prelude_checksum() {
        let m = message(&[], b"");
        assert_eq!(&m[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(u32::from_be_bytes([m[8], m[9], m[10], m[11]]), 0x05c2_48eb);
    }

    #[test]
    fn a_corrupted_message_is_refused() {
        let mut wire = BytesMut::from(&payload_chunk(b"data")[..]);
        let last = wire.len() - 5;
        wire[last] ^= 0xff;
        assert!(decode(&mut wire).is_err());
    }
}
