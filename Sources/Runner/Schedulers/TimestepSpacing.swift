/// diffusers' `timestep_spacing` option: how `set_timesteps(N)` picks N of the training timesteps
/// (Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed").
enum TimestepSpacing: String, Sendable {
    case linspace, leading, trailing

    init(_ config: SchedulerConfig, default fallback: TimestepSpacing) throws {
        let name = try config.string("timestep_spacing", default: fallback.rawValue)
        guard let spacing = TimestepSpacing(rawValue: name) else {
            throw RunnerError.invalidConfig(
                path: config.source, reason: "timestep_spacing '\(name)' is not one of linspace, leading, trailing")
        }
        self = spacing
    }
}

/// The NumPy routines diffusers uses for timesteps, reproduced with NumPy's float64 arithmetic.
enum NumPy {
    /// `np.linspace(start, stop, count)` (endpoint included): `i * step + start`, the last value exactly `stop`.
    static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        guard count > 1 else { return [start] }
        let delta = stop - start
        let divisor = Double(count - 1)
        let step = delta / divisor
        var values = (0..<count).map { i in
            step == 0 ? Double(i) / divisor * delta + start : Double(i) * step + start
        }
        values[count - 1] = stop
        return values
    }

    /// `np.arange(start, stop, step)` for a float step: `ceil((stop - start) / step)` values; NumPy stores
    /// `start` and `start + step`, then fills `start + i * ((start + step) - start)` (`DOUBLE_fill`).
    static func arange(_ start: Double, _ stop: Double, step: Double) -> [Double] {
        let length = ((stop - start) / step).rounded(.up)
        guard length.isFinite, length > 0 else { return [] }
        let delta = (start + step) - start
        return (0..<Int(length)).map { i in
            switch i {
            case 0: return start
            case 1: return start + step
            default: return start + Double(i) * delta
            }
        }
    }

    /// `np.round`: halves go to the even neighbour.
    static func round(_ value: Double) -> Double {
        value.rounded(.toNearestOrEven)
    }
}
