//! Property tests for the emulator's readers of untrusted bytes: function names in paths,
//! client contexts, registration bodies, the event-stream framing and the splitting of
//! process output into lines. No input makes one panic; what is written reads back.

use bytes::BytesMut;
use proptest::prelude::*;

use crate::eventstream;
use crate::function_name;
use crate::process::{LineSplitter, MAX_LINE};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn function_names_never_panic(raw in ".{0,120}") {
        let _ = function_name::parse(&raw);
    }

    #[test]
    fn every_documented_name_form_reads_back(
        name in "[A-Za-z0-9_-]{1,64}",
        qualifier in proptest::option::of(prop_oneof![Just("$LATEST".to_owned()), "[A-Za-z0-9_-]{1,20}"]),
        account in "[0-9]{12}",
        form in 0..3usize,
        encode in any::<bool>(),
    ) {
        let suffix = qualifier.as_ref().map(|q| format!(":{q}")).unwrap_or_default();
        let raw = match form {
            0 => format!("{name}{suffix}"),
            1 => format!("{account}:function:{name}{suffix}"),
            _ => format!("arn:aws:lambda:eu-west-3:{account}:function:{name}{suffix}"),
        };
        let raw = if encode { raw.replace(':', "%3A").replace('$', "%24") } else { raw };
        let parsed = function_name::parse(&raw).unwrap();
        prop_assert_eq!(parsed.name, name);
        prop_assert_eq!(parsed.qualifier, qualifier);
    }

    #[test]
    fn client_contexts_never_panic(raw in ".{0,200}") {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&raw) {
            headers.insert(ironlambda_api_client::headers::AMZ_CLIENT_CONTEXT, v);
            let _ = crate::invoke_api::decode_client_context(&headers);
        }
    }

    #[test]
    fn event_stream_messages_read_back(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
        read_size in 1usize..100,
    ) {
        let mut wire = Vec::new();
        for p in &payloads {
            wire.extend_from_slice(&eventstream::payload_chunk(p));
        }
        let mut buf = BytesMut::new();
        let mut read = Vec::new();
        for piece in wire.chunks(read_size) {
            buf.extend_from_slice(piece);
            read.extend(eventstream::decode(&mut buf).unwrap());
        }
        prop_assert!(buf.is_empty());
        let got: Vec<Vec<u8>> = read.iter().map(|m| m.payload.to_vec()).collect();
        prop_assert_eq!(got, payloads);
    }

    #[test]
    fn event_stream_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = eventstream::decode(&mut buf);
    }

    #[test]
    fn output_lines_are_bounded_and_lose_nothing(
        text in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..400),
        reads in proptest::collection::vec(1usize..700, 1..10),
    ) {
        let mut splitter = LineSplitter::default();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut rest = &text[..];
        let mut sizes = reads.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
            splitter.push(&rest[..n], |l| lines.push(l.to_vec()));
            rest = &rest[n..];
        }
        splitter.finish(|l| lines.push(l.to_vec()));
        for l in &lines {
            prop_assert!(l.len() <= MAX_LINE && !l.contains(&b'\n'));
        }
        // Exactly the input's lines: cut at each newline, a `\r` before it dropped, and the
        // last line kept when it has no newline after it.
        let mut expected: Vec<Vec<u8>> = text
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect();
        if text.last() == Some(&b'\n') || text.is_empty() {
            expected.pop();
        }
        prop_assert_eq!(lines, expected);
    }

    #[test]
    fn registration_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let body = crate::calls::PostedBody::Complete(bytes::Bytes::from(bytes));
        let _ = crate::extensions::parse_events(&body);
    }
}
