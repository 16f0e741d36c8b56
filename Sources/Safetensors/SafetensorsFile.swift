/// One .safetensors file, mapped and validated on open. Reading the header touches only its pages,
/// so opening a multi-GB checkpoint takes milliseconds.
public struct SafetensorsFile: StateDict {
    public let path: String
    public let file: MappedFile
    public let header: Header
    private let byName: [String: Int]
    /// Tensor names sorted (computed once: `keys` is read often).
    public let keys: [String]

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        let header = try file.withBytes(0..<file.size) { bytes in
            try Header.parse(prefix: bytes, fileSize: file.size, path: path)
        }
        self.path = path
        self.file = file
        self.header = header
        var byName: [String: Int] = [:]
        byName.reserveCapacity(header.tensors.count)
        for (i, t) in header.tensors.enumerated() { byName[t.name] = i }
        self.byName = byName
        self.keys = header.tensors.map(\.name).sorted()
    }

    public var metadata: [String: String] { header.metadata }
    /// `__metadata__` as declared (nil when absent or null): what a byte-identical rewrite passes to the writer.
    public var declaredMetadata: [String: String]? { header.declaredMetadata }
    /// Tensors in the order their bytes lie in the file (for sequential streaming).
    public var tensorsInFileOrder: [TensorInfo] { header.tensors }
    public var fileSize: Int { file.size }

    public func info(_ name: String) -> TensorInfo? {
        byName[name].map { header.tensors[$0] }
    }

    public func tensor(_ name: String) throws -> TensorView {
        guard let i = byName[name] else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        let info = header.tensors[i]
        return TensorView(info: info, file: file, fileOffset: header.dataStart + info.dataBegin)
    }
}
