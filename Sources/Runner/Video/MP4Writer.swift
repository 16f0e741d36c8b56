import CFFmpeg
import Foundation
import Safetensors

/// Writes H.264 in an MP4 container through libavcodec/libavformat, in the form ordinary players accept:
/// yuv420p (BT.709, limited range, tagged as such), constant frame rate, even width and height, `moov` at the
/// front (`+faststart`). libx264 (crf 18) when libavcodec has it, else the first H.264 encoder that opens.
/// All libav calls of the project live here.
enum MP4Writer {
    static func write(_ video: RGBVideo, fps: Int, to path: String) throws {
        guard fps > 0, fps <= 1000 else {
            throw RunnerError.outputFailed(path: path, reason: "the frame rate must be between 1 and 1000, not \(fps)")
        }
        try AtomicOutput.writeFile(to: path) { temporary in
            try encode(video, fps: fps, file: temporary, path: path)
        }
    }

    /// yuv420p halves the chroma resolution, so odd sizes are padded by repeating the last column/row.
    static func encodedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        (width + (width & 1), height + (height & 1))
    }

    private static func encode(_ video: RGBVideo, fps: Int, file: String, path: String) throws {
        func check(_ code: Int32, _ action: String) throws {
            if code < 0 { throw RunnerError.outputFailed(path: path, reason: "\(action) failed (\(message(code)))") }
        }
        av_log_set_level(AV_LOG_ERROR)   // keep libx264's informational lines off the terminal
        let (width, height) = encodedSize(width: video.width, height: video.height)

        var formatContext: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&formatContext, nil, "mp4", file), "creating the MP4 muxer")
        guard let muxer = formatContext else { throw RunnerError.outputFailed(path: path, reason: "libavformat has no MP4 muxer") }
        defer {
            if muxer.pointee.pb != nil { avio_closep(&muxer.pointee.pb) }
            avformat_free_context(muxer)
        }
        guard let stream = avformat_new_stream(muxer, nil) else {
            throw RunnerError.outputFailed(path: path, reason: "libavformat could not add a video stream")
        }

        var codecContext: UnsafeMutablePointer<AVCodecContext>? = try openEncoder(width: width, height: height, fps: fps,
                                           globalHeader: muxer.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0,
                                           path: path)
        defer { avcodec_free_context(&codecContext) }
        guard let encoder = codecContext else { return }   // openEncoder throws rather than returning none
        try check(avcodec_parameters_from_context(stream.pointee.codecpar, encoder), "configuring the video stream")
        stream.pointee.time_base = encoder.pointee.time_base
        stream.pointee.avg_frame_rate = AVRational(num: Int32(fps), den: 1)

        try check(avio_open(&muxer.pointee.pb, file, AVIO_FLAG_WRITE), "opening \(file)")
        var muxerOptions: OpaquePointer?
        av_dict_set(&muxerOptions, "movflags", "+faststart", 0)
        let headerStatus = avformat_write_header(muxer, &muxerOptions)
        av_dict_free(&muxerOptions)
        try check(headerStatus, "writing the MP4 header")

        var frame = av_frame_alloc()
        defer { av_frame_free(&frame) }
        var packet = av_packet_alloc()
        defer { av_packet_free(&packet) }
        guard let frame, let packet else { throw RunnerError.outputFailed(path: path, reason: "out of memory") }
        frame.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        try check(av_frame_get_buffer(frame, 0), "allocating a video frame")

        guard let scaler = sws_getContext(Int32(width), Int32(height), AV_PIX_FMT_RGB24, Int32(width), Int32(height),
                                          AV_PIX_FMT_YUV420P, SWS_BICUBIC | SWS_ACCURATE_RND, nil, nil, nil) else {
            throw RunnerError.outputFailed(path: path, reason: "libswscale cannot convert RGB to yuv420p")
        }
        defer { sws_freeContext(scaler) }
        // Full-range RGB in, limited-range BT.709 YUV out, matching the tags on the stream.
        let bt709 = sws_getCoefficients(SWS_CS_ITU709)
        _ = sws_setColorspaceDetails(scaler, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16)

        func drainPackets() throws {
            while true {
                let status = avcodec_receive_packet(encoder, packet)
                if status == cffmpeg_averror_eagain() || status == cffmpeg_averror_eof() { return }
                try check(status, "encoding H.264")
                av_packet_rescale_ts(packet, encoder.pointee.time_base, stream.pointee.time_base)
                packet.pointee.stream_index = stream.pointee.index
                try check(av_interleaved_write_frame(muxer, packet), "writing a video packet")
            }
        }

        var padded = [UInt8](repeating: 0, count: width * height * 3)
        for (index, rgb) in video.frames.enumerated() {
            padEven(rgb, width: video.width, height: video.height, into: &padded, paddedWidth: width, paddedHeight: height)
            try check(av_frame_make_writable(frame), "preparing a video frame")
            let stride = [Int32(width * 3)]
            padded.withUnsafeBufferPointer { src in
                let planes: [UnsafePointer<UInt8>?] = [src.baseAddress]
                withUnsafeMutablePointer(to: &frame.pointee.data) { data in
                    data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dst in
                        withUnsafeMutablePointer(to: &frame.pointee.linesize) { lines in
                            lines.withMemoryRebound(to: Int32.self, capacity: 8) { dstStride in
                                _ = sws_scale(scaler, planes, stride, 0, Int32(height), dst, dstStride)
                            }
                        }
                    }
                }
            }
            frame.pointee.pts = Int64(index)
            try check(avcodec_send_frame(encoder, frame), "encoding frame \(index)")
            try drainPackets()
        }
        try check(avcodec_send_frame(encoder, nil), "finishing the H.264 stream")
        try drainPackets()
        try check(av_write_trailer(muxer), "finishing the MP4 file")
    }

    /// The first H.264 encoder that opens with yuv420p at this size and rate, preferring libx264.
    private static func openEncoder(width: Int, height: Int, fps: Int, globalHeader: Bool,
                                    path: String) throws -> UnsafeMutablePointer<AVCodecContext> {
        let candidates = [avcodec_find_encoder_by_name("libx264"), avcodec_find_encoder(AV_CODEC_ID_H264)].compactMap { $0 }
        var lastError: Int32 = 0
        for codec in candidates {
            guard let context = avcodec_alloc_context3(codec) else { continue }
            context.pointee.width = Int32(width)
            context.pointee.height = Int32(height)
            context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
            context.pointee.time_base = AVRational(num: 1, den: Int32(fps))
            context.pointee.framerate = AVRational(num: Int32(fps), den: 1)
            context.pointee.color_range = AVCOL_RANGE_MPEG
            context.pointee.colorspace = AVCOL_SPC_BT709
            context.pointee.color_primaries = AVCOL_PRI_BT709
            context.pointee.color_trc = AVCOL_TRC_BT709
            if globalHeader { context.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER }
            var options: OpaquePointer?
            if String(cString: codec.pointee.name) == "libx264" {
                av_dict_set(&options, "crf", "18", 0)        // visually lossless for generated video
                av_dict_set(&options, "preset", "medium", 0)
            }
            let status = avcodec_open2(context, codec, &options)
            av_dict_free(&options)
            if status >= 0 { return context }
            lastError = status
            var failed: UnsafeMutablePointer<AVCodecContext>? = context
            avcodec_free_context(&failed)
        }
        throw RunnerError.outputFailed(path: path, reason: candidates.isEmpty
            ? "this libavcodec has no H.264 encoder (install one built with libx264, or write .gif or PNG frames)"
            : "no H.264 encoder could be opened (\(message(lastError)))")
    }

    private static func padEven(_ rgb: [UInt8], width: Int, height: Int, into out: inout [UInt8],
                                paddedWidth: Int, paddedHeight: Int) {
        let rowBytes = width * 3, paddedRowBytes = paddedWidth * 3
        for y in 0..<paddedHeight {
            let source = min(y, height - 1) * rowBytes
            let target = y * paddedRowBytes
            out.replaceSubrange(target..<(target + rowBytes), with: rgb[source..<(source + rowBytes)])
            if paddedWidth > width {
                for c in 0..<3 { out[target + rowBytes + c] = rgb[source + rowBytes - 3 + c] }
            }
        }
    }

    private static func message(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        av_strerror(code, &buffer, buffer.count)
        return String(cString: buffer)
    }
}
