package cli

// The script tests run the CLI in this test binary; only here do the
// PROPHET_TEST_* variables take effect.
func init() { testHooksEnabled = true }
