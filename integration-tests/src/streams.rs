//! Reading streamed responses in tests: what the `stream` example sends, and everything an
//! event stream carried.

use ironlambda_emulator::EventStream;
use serde_json::Value;

/// The bytes the stream example sends for `chunks` chunks of `size` bytes.
pub fn expected(chunks: u64, size: usize) -> Vec<u8> {
    (0..chunks)
        .flat_map(|i| std::iter::repeat_n(b'a' + (i % 26) as u8, size))
        .collect()
}

/// Everything an event stream carried: the joined payload and the `InvokeComplete` body.
pub async fn read_all(mut events: EventStream) -> (Vec<u8>, Value) {
    let mut payload = Vec::new();
    let mut complete = None;
    while let Some(event) = events.next_event().await.unwrap() {
        assert!(complete.is_none(), "an event came after InvokeComplete");
        match event.header(":event-type") {
            Some("PayloadChunk") => payload.extend_from_slice(&event.payload),
            Some("InvokeComplete") => {
                complete = Some(serde_json::from_slice(&event.payload).unwrap())
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    (
        payload,
        complete.expect("the stream ends with InvokeComplete"),
    )
}
