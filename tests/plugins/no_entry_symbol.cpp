// A shared library that is not a plugin: it lacks the atb_get_api entry symbol.
extern "C" __attribute__((visibility("default"))) int atb_test_unrelated_function() { return 42; }
