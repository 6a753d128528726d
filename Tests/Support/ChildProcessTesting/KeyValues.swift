/// The `key=value` words of one line of helper output ("a=1 b=2 note" gives a and b).
public func fields(_ line: String) -> [String: String] {
    var result: [String: String] = [:]
    for word in line.split(separator: " ") {
        let parts = word.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
    }
    return result
}

/// The `key=value` words of every line; a later line wins.
public func mergedFields(_ lines: [String]) -> [String: String] {
    var result: [String: String] = [:]
    for line in lines { result.merge(fields(line)) { _, later in later } }
    return result
}
