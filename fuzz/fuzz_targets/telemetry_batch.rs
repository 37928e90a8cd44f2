//! A Telemetry API delivery, as an extension's listener reads it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ironlambda_extension::fuzzing::telemetry_batch(data));
