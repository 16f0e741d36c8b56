import CFFmpeg
import Foundation

/// A video file decoded back with libavformat/libavcodec, to check the writers with an independent decoder.
public struct DecodedVideo {
    public var codec: String
    public var pixelFormat: String
    public var width: Int
    public var height: Int
    /// The stream's average frame rate as the demuxer reports it (0 when unknown).
    public var frameRate: Double
    /// RGB24 frames.
    public var frames: [[UInt8]]
}

public struct LibavReadError: Error, CustomStringConvertible {
    public var description: String
}

public enum LibavVideoReader {
    public static func read(_ path: String) throws -> DecodedVideo {
        func check(_ code: Int32, _ what: String) throws {
            if code < 0 { throw LibavReadError(description: "\(path): \(what) failed (\(code))") }
        }
        var input: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_open_input(&input, path, nil, nil), "opening")
        defer { avformat_close_input(&input) }
        guard let input else { throw LibavReadError(description: "\(path): no input") }
        try check(avformat_find_stream_info(input, nil), "reading stream info")
        let index = av_find_best_stream(input, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        try check(index, "finding a video stream")
        guard let stream = input.pointee.streams[Int(index)], let decoder = avcodec_find_decoder(stream.pointee.codecpar.pointee.codec_id) else {
            throw LibavReadError(description: "\(path): no decoder")
        }
        var context = avcodec_alloc_context3(decoder)
        defer { avcodec_free_context(&context) }
        guard let context else { throw LibavReadError(description: "out of memory") }
        try check(avcodec_parameters_to_context(context, stream.pointee.codecpar), "configuring the decoder")
        try check(avcodec_open2(context, decoder, nil), "opening the decoder")
        let rate = stream.pointee.avg_frame_rate
        var result = DecodedVideo(codec: String(cString: decoder.pointee.name), pixelFormat: "",
                                  width: Int(stream.pointee.codecpar.pointee.width),
                                  height: Int(stream.pointee.codecpar.pointee.height),
                                  frameRate: rate.den == 0 ? 0 : Double(rate.num) / Double(rate.den), frames: [])
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        var frame = av_frame_alloc()
        defer { av_frame_free(&frame) }
        guard let packet, let frame else { throw LibavReadError(description: "out of memory") }

        func receive() throws {
            while true {
                let status = avcodec_receive_frame(context, frame)
                if status == cffmpeg_averror_eagain() || status == cffmpeg_averror_eof() { return }
                try check(status, "decoding")
                result.pixelFormat = String(cString: av_get_pix_fmt_name(AVPixelFormat(rawValue: frame.pointee.format)))
                result.frames.append(try toRGB(frame))
                av_frame_unref(frame)
            }
        }
        while av_read_frame(input, packet) >= 0 {
            defer { av_packet_unref(packet) }
            if packet.pointee.stream_index != index { continue }
            try check(avcodec_send_packet(context, packet), "sending a packet")
            try receive()
        }
        try check(avcodec_send_packet(context, nil), "flushing")
        try receive()
        return result
    }

    private static func toRGB(_ frame: UnsafeMutablePointer<AVFrame>) throws -> [UInt8] {
        let (w, h) = (Int(frame.pointee.width), Int(frame.pointee.height))
        guard let scaler = sws_getContext(Int32(w), Int32(h), AVPixelFormat(rawValue: frame.pointee.format), Int32(w), Int32(h),
                                          AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND, nil, nil, nil) else {
            throw LibavReadError(description: "no conversion to RGB")
        }
        defer { sws_freeContext(scaler) }
        // The MP4 writer tags BT.709 limited range; decode with the same matrix.
        let bt709 = sws_getCoefficients(SWS_CS_ITU709)
        _ = sws_setColorspaceDetails(scaler, bt709, 0, bt709, 1, 0, 1 << 16, 1 << 16)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        let stride = [Int32(w * 3)]
        rgb.withUnsafeMutableBufferPointer { out in
            let planes: [UnsafeMutablePointer<UInt8>?] = [out.baseAddress]
            withUnsafeMutablePointer(to: &frame.pointee.data) { data in
                data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { src in
                    withUnsafeMutablePointer(to: &frame.pointee.linesize) { lines in
                        lines.withMemoryRebound(to: Int32.self, capacity: 8) { srcStride in
                            _ = sws_scale(scaler, src, srcStride, 0, Int32(h), planes, stride)
                        }
                    }
                }
            }
        }
        return rgb
    }
}
