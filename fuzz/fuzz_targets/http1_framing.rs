//! Reply heads and chunked bodies, as the Runtime API client reads them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ironlambda_api_client::fuzzing::reply(data));
