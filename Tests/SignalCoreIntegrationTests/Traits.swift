import Testing

#if !(ServiceLifecycleIntegration && TelemetryIntegration)
/// Without both integration traits the integration libraries build without their packages and their helper has
/// nothing to run: this suite is reported as skipped, with the command that runs the integration tests.
@Suite(.disabled("needs the integration traits: swift test --enable-all-traits (scripts/test does)"))
struct IntegrationTests {
    @Test func integrationsAreTestedWithTheirTraits() {}
}
#endif
