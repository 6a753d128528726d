#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a configuration file could not be used. The previous configuration stays in force.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read: the failing call and errno (ENOENT: it does not exist).
    case unreadable(path: String, call: String, errno: CInt)
    /// The file is not valid JSON for the configuration type; the string says where and why.
    case malformed(path: String, reason: String)
    /// The file parsed, but validation refused it; the string is the validator's reason.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let call, let code):
            return "cannot read \(path): \(call): \(String(cString: strerror(code))) (errno: \(code))"
        case .malformed(let path, let reason): return "\(path) is not a valid configuration: \(reason)"
        case .invalid(let path, let reason): return "\(path) was refused: \(reason)"
        }
    }
}

/// A validator's refusal: throw it (or any error) from the validation closure with a reason.
public struct ConfigRejection: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
