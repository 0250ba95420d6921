"""NumPy arrays and PyTorch tensors as atb_tensor descriptors, and the batch's integer arrays, checked
before any ABI call: what the ABI cannot express (a Python object of the wrong kind, a dtype it has no
code for, negative strides, a read-only output, an integer array shorter than the batch) is refused here,
so that a plugin never reads or writes outside what Python owns."""

import ctypes

import numpy as np

from . import abi
from .errors import InvalidArgumentError

_NUMPY_DTYPES = {np.dtype(np.float32): abi.DTYPE_F32, np.dtype(np.float16): abi.DTYPE_F16}
DTYPE_NAMES = {"f32": abi.DTYPE_F32, "f16": abi.DTYPE_F16, "bf16": abi.DTYPE_BF16}


def is_torch_tensor(value):
    return type(value).__module__.startswith("torch") and hasattr(value, "data_ptr")


def _torch_dtype_code(dtype):
    import torch
    return {torch.float32: abi.DTYPE_F32, torch.float16: abi.DTYPE_F16, torch.bfloat16: abi.DTYPE_BF16}.get(dtype)


class Described:
    """An atb_tensor and the Python objects its pointer lives in (kept alive for the call)."""

    def __init__(self, descriptor, owner, device_type, device_id):
        self.descriptor = descriptor
        self.owner = owner
        self.device_type = device_type
        self.device_id = device_id


def describe(value, name, writable=False):
    """The descriptor of a 3-D tensor [tokens, heads, head size] given as a NumPy array or a torch tensor."""
    if is_torch_tensor(value):
        return _describe_torch(value, name, writable)
    if not isinstance(value, np.ndarray):
        raise InvalidArgumentError(f"{name}: a {type(value).__name__} is not a tensor; allowed: a numpy.ndarray or "
                                   "a torch.Tensor")
    return _describe_numpy(value, name, writable)


def _normalized(shape, strides):
    """Strides of dimensions of at most one element mean nothing; give them the values the ABI wants."""
    return [s if n > 1 else (1 if i == len(shape) - 1 else 0) for i, (n, s) in enumerate(zip(shape, strides))]


def _check_shape(name, shape, strides):
    if len(shape) != 3:
        raise InvalidArgumentError(f"{name}: ndim = {len(shape)}; allowed: 3 ([tokens, heads, head size])")
    if any(s < 0 for s in strides):
        raise InvalidArgumentError(f"{name}: strides {tuple(strides)} (elements) hold a negative stride; allowed: "
                                   ">= 0 (copy the view with ascontiguousarray / .contiguous())")
    if shape[2] > 1 and strides[2] != 1:
        raise InvalidArgumentError(f"{name}: the last dimension has stride {strides[2]}; allowed: 1 (a head's "
                                   "elements contiguous)")


def _fill(dtype, data, shape, strides, device_type=abi.DEVICE_CPU, device_id=0, stream=None):
    tensor = abi.Tensor.versioned(data=data, dtype=dtype, device_type=device_type, device_id=device_id, ndim=3,
                                  stream=stream)
    for i in range(3):
        tensor.shape[i] = shape[i]
        tensor.strides[i] = strides[i]
    return tensor


def _describe_numpy(array, name, writable):
    dtype = _NUMPY_DTYPES.get(array.dtype)
    if dtype is None:
        raise InvalidArgumentError(f"{name}: dtype {array.dtype}; allowed: float32, float16 (bf16 through torch)")
    if any(s % array.itemsize for s in array.strides):
        raise InvalidArgumentError(f"{name}: byte strides {array.strides} are not multiples of the element size "
                                   f"{array.itemsize}")
    strides = _normalized(array.shape, [s // array.itemsize for s in array.strides])
    _check_shape(name, array.shape, strides)
    if writable and not array.flags.writeable:
        raise InvalidArgumentError(f"{name}: the array is read-only; the plugin writes the output")
    if array.ctypes.data % array.itemsize:
        raise InvalidArgumentError(f"{name}: data is not aligned to its element size {array.itemsize}")
    return Described(_fill(dtype, array.ctypes.data, array.shape, strides), array, abi.DEVICE_CPU, 0)


def _describe_torch(tensor, name, writable):
    import torch
    dtype = _torch_dtype_code(tensor.dtype)
    if dtype is None:
        raise InvalidArgumentError(f"{name}: dtype {tensor.dtype}; allowed: torch.float32, torch.float16, "
                                   "torch.bfloat16")
    strides = _normalized(tuple(tensor.shape), list(tensor.stride()))
    _check_shape(name, tuple(tensor.shape), strides)
    if writable and tensor.requires_grad and torch.is_grad_enabled():
        raise InvalidArgumentError(f"{name}: the output requires grad; the plugin writes it outside autograd")
    device = tensor.device
    if device.type == "cpu":
        return Described(_fill(dtype, tensor.data_ptr(), tensor.shape, strides), tensor, abi.DEVICE_CPU, 0)
    if device.type == "cuda":
        stream = torch.cuda.current_stream(device).cuda_stream
        return Described(_fill(dtype, tensor.data_ptr(), tensor.shape, strides, abi.DEVICE_CUDA,
                               device.index or 0, stream), tensor, abi.DEVICE_CUDA, device.index or 0)
    raise InvalidArgumentError(f"{name}: device {device}; allowed: cpu, cuda")


_INT_TYPES = {"int32": (np.int32, ctypes.c_int32), "int64": (np.int64, ctypes.c_int64)}


def integers(value, name, kind, length, device_type, device_id):
    """A contiguous int32/int64 copy (or view) of an integer array on the tensors' device, of `length`
    elements; returns (owner, pointer)."""
    numpy_type, c_type = _INT_TYPES[kind]
    if is_torch_tensor(value):
        import torch
        if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
            raise InvalidArgumentError(f"{name}: dtype {value.dtype}; allowed: an integer dtype")
        on_cuda = value.device.type == "cuda"
        if on_cuda != (device_type == abi.DEVICE_CUDA) or (on_cuda and (value.device.index or 0) != device_id):
            where = f"cuda:{device_id}" if device_type == abi.DEVICE_CUDA else "cpu"
            raise InvalidArgumentError(f"{name}: on {value.device}; allowed: the tensors' device, {where}")
        if value.numel() != length:
            raise InvalidArgumentError(f"{name}: {value.numel()} elements; the batch needs {length}")
        if not on_cuda:
            value = value.numpy()
        else:
            owner = value.to(dtype=getattr(torch, kind)).contiguous()
            return owner, ctypes.cast(ctypes.c_void_p(owner.data_ptr()), ctypes.POINTER(c_type))
    if device_type == abi.DEVICE_CUDA:
        raise InvalidArgumentError(f"{name}: a host array; CUDA tensors need their integer arrays on cuda:{device_id} "
                                   "(torch tensors)")
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{name}: dtype {array.dtype}; allowed: an integer dtype")
    if array.size != length:
        raise InvalidArgumentError(f"{name}: {array.size} elements; the batch needs {length}")
    owner = np.ascontiguousarray(array, dtype=numpy_type).reshape(-1)
    if owner.size and not np.array_equal(owner, array.reshape(-1)):
        raise InvalidArgumentError(f"{name}: values do not fit {kind}")
    return owner, owner.ctypes.data_as(ctypes.POINTER(c_type))
