//! The invocation headers of a `/next` reply.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ironlambda_api_client::fuzzing::next_headers(data));
