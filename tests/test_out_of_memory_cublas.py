"""cuBLAS (and cuDNN, cuSOLVER) running out of device memory is out of memory too: creating a
cuBLAS handle on a GPU that torch's cache has filled fails inside the library, which torch raises
as ``RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")``
(``TORCH_CUDABLAS_CHECK``, ATen/cuda/Exceptions.h), not as ``torch.OutOfMemoryError``: it ended
as a traceback instead of the one ``out of memory on cuda:0 while ...`` line. The messages are
torch's own text; no GPU is needed to classify them."""
from __future__ import annotations

import pytest

from ptv2_core.memory import OutOfMemory, fits, is_out_of_memory

CUBLAS_ALLOC = "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"
CUBLASLT_ALLOC = ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasLtMatmul( ltHandle, "
                  "computeDesc.descriptor(), &alpha_val, mat1_ptr, Adesc.descriptor(), ...)`")


@pytest.mark.parametrize("text", [CUBLAS_ALLOC, CUBLASLT_ALLOC, "cuDNN error: CUDNN_STATUS_ALLOC_FAILED"])
def test_a_library_allocation_failure_is_out_of_memory(text):
    assert is_out_of_memory(RuntimeError(text))


def test_it_ends_as_the_one_out_of_memory_line():
    with pytest.raises(OutOfMemory) as caught:
        with fits("cuda:0", "training on a batch of 32 rows of 128 tokens", "try a smaller --batch-size"):
            raise RuntimeError(CUBLAS_ALLOC)
    assert str(caught.value) == ("out of memory on cuda:0 while training on a batch of 32 rows of 128 tokens: "
                                 "try a smaller --batch-size")


@pytest.mark.parametrize("text", ["CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx(...)`",
                                  "CUDA error: CUBLAS_STATUS_INVALID_VALUE when calling `cublasSgemm(...)`"])
def test_other_library_errors_stay_what_they_are(text):
    assert not is_out_of_memory(RuntimeError(text))
    with pytest.raises(RuntimeError, match="CUBLAS_STATUS_"):
        with fits("cuda:0", "training", "try a smaller --batch-size"):
            raise RuntimeError(text)
