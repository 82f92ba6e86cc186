"""Loihi's constants and per-core limits, as NengoLoihi 1.1.0 states them (papers.md B2, B4, B5).

Each constant names its source in nengo-loihi. Nothing here imports nengo-loihi: these are
plain numbers shared by the compiler's Loihi passes and the reference simulator.
"""

# --- per-core resources (nengo_loihi/block.py)
MAX_COMPARTMENTS = 1024  # block.MAX_COMPARTMENTS
MAX_IN_AXONS = 4096  # block.MAX_IN_AXONS
MAX_OUT_AXONS = 4096  # block.MAX_OUT_AXONS
MAX_SYNAPSE_BITS = 16384 * 64  # block.MAX_SYNAPSE_BITS (16384 words of 64 bits)
CORES_PER_CHIP = 128  # hardware/allocators.py Greedy: "Chips cannot have more than 128 cores"
MAX_COMPARTMENT_BASE = 256  # builder/validate.py validate_synapse max_base; conv.py "offset % 256"
MAX_COMPARTMENT_CFGS = 32  # hardware/nxsdk_objects.py MAX_COMPARTMENT_CFGS
MAX_VTH_CFGS = 8  # hardware/nxsdk_objects.py MAX_VTH_CFGS
MAX_SYNAPSE_CFGS = 8  # hardware/nxsdk_objects.py MAX_SYNAPSE_CFGS
MAX_SYNAPSE_FORMATS = 15  # hardware/validate.py validate_core: len(core.synapse_cfgs) <= 16, index 0 unused

# --- threshold and bias formats (nengo_loihi/builder/discretize.py)
VTH_MAN_MAX = 2**17 - 1  # discretize.VTH_MAN_MAX: threshold mantissa, 1..2^17-1
VTH_EXP = 6  # discretize.VTH_EXP: stored threshold = mantissa << 6
VTH_MAX = VTH_MAN_MAX * 2**VTH_EXP  # discretize.VTH_MAX
BIAS_MAN_MAX = 2**12 - 1  # discretize.BIAS_MAN_MAX: bias mantissa magnitude
BIAS_EXP_MAX = 2**3 - 1  # discretize.BIAS_EXP_MAX: bias exponent 0..7
BIAS_MAX = BIAS_MAN_MAX * 2**BIAS_EXP_MAX  # discretize.BIAS_MAX

# --- state widths (nengo_loihi/builder/discretize.py)
Q_BITS = 21  # discretize.Q_BITS: synaptic input accumulator, bits plus sign
U_BITS = 23  # discretize.U_BITS: current u, bits plus sign
LEARN_BITS = 15  # discretize.LEARN_BITS (learning accumulator; unused by snnc)
LEARN_FRAC = 7  # discretize.LEARN_FRAC (unused by snnc)

# --- decays and refractory period
DECAY_BITS = 12  # emulator/interface.py decay_int(bits=12): multiplier (2^12 - offset - decay)
MAX_DECAY = 2**12 - 1  # discretize_compartment's local MAX_DECAY; nxsdk_objects DECAY_U_MAX/DECAY_V_MAX
DECAY_SCALE_TH = 0.5 / 2**12  # block.Compartment.DECAY_SCALE_TH: smallest decay that can be scaled
REFRACT_DELAY_MAX = 63  # hardware/nxsdk_objects.py CompartmentConfig.REFRACT_DELAY_MAX
DECAY_MAGNITUDE_X0 = 2**21  # discretize_compartment: decay_magnitude(..., x0=2097152)

# --- voltage limits (discretize_compartment: vmin = -2^vmine + 1, vmax = 2^(9 + 2 vmaxe) - 1)
VMIN_EXP_MAX = 2**5 - 1  # discretize_compartment: vmine clipped to 0..31
VMAX_EXP_MAX = 2**3 - 1  # discretize_compartment: vmaxe clipped to 0..7
VMAX_EXP_OFFSET = 9  # discretize_compartment: vmax = 2^(9 + 2 vmaxe) - 1

# --- synapse format NengoLoihi always uses (block.Synapse._set_weights_indices, SynapseConfig)
WEIGHT_BITS = 7  # SynapseConfig weight_bits=7, which WEIGHT_BITS_MAP turns into 8 real bits
REAL_WEIGHT_BITS = 8  # SynapseConfig.WEIGHT_BITS_MAP[7]
WEIGHT_SHIFT_BITS = 8 - REAL_WEIGHT_BITS + 1  # SynapseConfig.shift_bits (fanout_type=1: mixed sign)
WEIGHT_MANTISSA_MAX = 2 ** (8 - WEIGHT_SHIFT_BITS) - 1  # discretize_weights m = 127
WEIGHT_SCALE_EXP = 6  # SynapseConfig.get_real_weight_exp: scale = 2^(6 + weight_exp)
WEIGHT_EXP_MIN = -7  # builder/validate.py validate_synapse_cfg: -7 <= weight_exp <= 7
WEIGHT_EXP_MAX = 7  # builder/validate.py validate_synapse_cfg
SYNAPSE_WEIGHT_EXP_MIN = -6  # discretize_synapse: w_exp2 = max(w_exp - dw_exp, -6)
BLOCK_WEIGHT_EXPS = tuple(range(0, -8, -1))  # discretize_compartment: w_exp in range(0, -8, -1)
STORED_WEIGHT_MIN, STORED_WEIGHT_MAX = -256, 255  # discretize_weights check_result: w // scale
WEIGHT_MAX_SCALED = 255.0  # discretize_compartment: w_scale = 255.0 / w_max
SYNAPSES_PER_GROUP = 64  # SynapseConfig n_synapses=63, plus one: bits_per_axon groups
