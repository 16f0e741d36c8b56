import Foundation
import Safetensors

/// EasyAnimate's yaml config (`config/easyanimate_video_motion_module_v1.yaml`): the motion module's
/// `transformer_additional_kwargs` and the samplers' `noise_scheduler_kwargs`.
public struct EasyAnimateConfig: Sendable {
    /// Where the text came from, for messages.
    public let source: String
    public let yaml: String

    /// The config EasyAnimate v1 ships with, used when a model tree comes without one
    /// (the release's `config/easyanimate_video_motion_module_v1.yaml`, verbatim).
    public static let v1 = EasyAnimateConfig(source: "built-in easyanimate_video_motion_module_v1.yaml", yaml: """
        transformer_additional_kwargs:
          patch_3d:                                   false
          fake_3d:                                    false
          basic_block_type:                           "motionmodule"
          time_position_encoding_before_transformer:  false
          motion_module_type:                         "VanillaGrid"

          motion_module_kwargs:
            num_attention_heads:                8
            num_transformer_block:              1
            attention_block_types:              [ "Temporal_Self", "Temporal_Self" ]
            temporal_position_encoding:         true
            temporal_position_encoding_max_len: 4096
            temporal_attention_dim_div:         1
            block_size:                         2

        noise_scheduler_kwargs:
          beta_start:    0.0001
          beta_end:      0.02
          beta_schedule: "linear"
          steps_offset:  1

        vae_kwargs:
          enable_magvit: false
        """)

    public init(source: String, yaml: String) {
        self.source = source
        self.yaml = yaml
    }

    public init(path: String) throws {
        guard let data = SmallFile.contents(atPath: path), let text = String(validating: data, as: UTF8.self) else {
            throw RunnerError.invalidConfig(path: path, reason: "cannot read the EasyAnimate yaml config")
        }
        self.init(source: path, yaml: text)
    }
}
