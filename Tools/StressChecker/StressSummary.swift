extension StressChecker.Result {
    /// The summary table a person reads at the end of a run.
    public func render(name: (Int32) -> String, elapsedSeconds: Double, extra: [String] = []) -> String {
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            let p = String(repeating: " ", count: max(0, w - s.count))
            return left ? s + p : p + s
        }
        var out: [String] = []
        out.append(pad("signal", 12, left: true) + pad("sent", 10) + pad("delivered", 11) + pad("records", 10) + pad("dropped", 9)
            + pad("wait thread", 13) + pad("handler", 9))
        for row in rows {
            out.append(pad(name(row.signal), 12, left: true) + pad(row.sent < 0 ? "rt" : "\(row.sent)", 10)
                + pad("\(row.counts.delivered)", 11) + pad("\(row.records)", 10) + pad("\(row.counts.droppedRecords)", 9)
                + pad("\(row.counts.viaWaitThread)", 13) + pad("\(row.counts.viaHandler)", 9))
        }
        out.append("real-time: \(realtimeReceived)/\(realtimeExpected) received exactly once, missing \(missing), duplicates \(duplicates), "
            + "out of order \(outOfOrder); EAGAIN retries \(retries)")
        out.append("standard signals: \(handshakesVerified)/\(handshakesTotal) handshakes show a delivery after the sender's last send")
        out.append(contentsOf: extra)
        out.append("elapsed \(Int(elapsedSeconds.rounded())) s")
        if violations.isEmpty {
            out.append("RESULT: PASS (0 violations)")
        } else {
            out.append("RESULT: FAIL (\(violations.map(\.count).reduce(0, +)) violations)")
            for v in violations { out.append("  VIOLATION \(v)") }
        }
        return out.joined(separator: "\n")
    }
}
