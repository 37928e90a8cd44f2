//! The `{FunctionName}` of an Invoke API path, as the emulator reads it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        ironlambda_emulator::fuzzing::function_name(raw);
    }
});
