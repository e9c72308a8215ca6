// npcnn fused kernels. Layouts are NHWC, C-contiguous; all linear indices are
// 64-bit. Every kernel is a grid-stride loop over its outputs, one output per
// thread per step. Compiled with --fmad=false: no a*b+c is fused, so results
// equal the NumPy/CuPy ops bit for bit.

template <typename T> __device__ __forceinline__ T npcnn_neg_inf();
template <> __device__ __forceinline__ float npcnn_neg_inf<float>() {
    return __int_as_float((int)0xff800000u);
}
template <> __device__ __forceinline__ double npcnn_neg_inf<double>() {
    return __longlong_as_double((long long)0xfff0000000000000ull);
}
template <typename T> __device__ __forceinline__ T npcnn_sqrt(T v);
template <> __device__ __forceinline__ float npcnn_sqrt<float>(float v) { return sqrtf(v); }
template <> __device__ __forceinline__ double npcnn_sqrt<double>(double v) { return sqrt(v); }
__device__ __forceinline__ int npcnn_imin(int a, int b) { return a < b ? a : b; }

// y = max(z + b[c], 0) where c is the last (channel) axis: NumPy's maximum,
// i.e. NaN propagates and -0.0 becomes +0.0.
template <typename T>
__global__ void npcnn_bias_relu(const T* z, const T* b, T* y, long long total, long long channels) {
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (long long)gridDim.x * blockDim.x) {
        T t = z[k] + b[k % channels];
        y[k] = (t > (T)0 || t != t) ? t : (T)0;
    }
}

// Max-pool forward: one thread per output (n, oh, ow, c). Cells outside the
// input ('same' padding) are -inf. y is the running max of np.maximum (NaN
// propagates); arg is the first tap t = i*pw + j in row-major order whose value
// equals y (strict > keeps the first maximum), or -1 when y is NaN.
template <typename T>
__global__ void npcnn_maxpool_fwd(const T* x, T* y, int* arg, long long total, int H, int W,
                                  int C, int Ho, int Wo, int ph, int pw, int sh, int sw, int top,
                                  int left) {
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (long long)gridDim.x * blockDim.x) {
        int c = (int)(k % C);
        long long r = k / C;
        int ow = (int)(r % Wo);
        r /= Wo;
        int oh = (int)(r % Ho);
        long long n = r / Ho;
        T best = npcnn_neg_inf<T>();
        int idx = -1;
        for (int i = 0; i < ph; ++i) {
            int h = oh * sh + i - top;
            for (int j = 0; j < pw; ++j) {
                int w = ow * sw + j - left;
                T v = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * H + h) * W + w) * C + c]
                                                           : npcnn_neg_inf<T>();
                int t = i * pw + j;
                if (t == 0) {
                    best = v;
                    idx = (v == v) ? 0 : -1;
                } else if (v > best) {
                    best = v;
                    idx = t;
                } else if (v != v && best == best) {
                    best = v;
                    idx = -1;
                }
            }
        }
        y[k] = best;
        arg[k] = idx;
    }
}

// Max-pool backward: one thread per input cell (n, h, w, c) gathers dy of the
// windows whose winning tap is this cell. Windows covering padded row hp are
// oh in [lo, hi], lo = hp >= ph ? (hp - ph) / sh + 1 : 0, hi = min(hp / sh, Ho - 1).
// The ops add tap by tap in row-major order; tap i = hp - oh*sh grows as oh
// shrinks, so oh (and ow) run downwards to add in the same order.
template <typename T>
__global__ void npcnn_maxpool_bwd(const T* dy, const int* arg, T* dx, long long total, int H,
                                  int W, int C, int Ho, int Wo, int ph, int pw, int sh, int sw,
                                  int top, int left) {
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (long long)gridDim.x * blockDim.x) {
        int c = (int)(k % C);
        long long r = k / C;
        int w = (int)(r % W);
        r /= W;
        int h = (int)(r % H);
        long long n = r / H;
        int hp = h + top, wp = w + left;
        int oh_lo = hp >= ph ? (hp - ph) / sh + 1 : 0;
        int oh_hi = npcnn_imin(hp / sh, Ho - 1);
        int ow_lo = wp >= pw ? (wp - pw) / sw + 1 : 0;
        int ow_hi = npcnn_imin(wp / sw, Wo - 1);
        T acc = (T)0;
        for (int oh = oh_hi; oh >= oh_lo; --oh) {
            int i = hp - oh * sh;
            for (int ow = ow_hi; ow >= ow_lo; --ow) {
                int j = wp - ow * sw;
                long long o = ((n * Ho + oh) * Wo + ow) * C + c;
                if (arg[o] == i * pw + j) acc += dy[o];
            }
        }
        dx[k] = acc;
    }
}

// col2im: dx[n, h, w, c] = sum of dcols[n, oh, ow, i, j, c] over the windows
// (oh, ow) and taps (i, j) = (hp - oh*sh, wp - ow*sw) that read padded cell
// (hp, wp) = (h + off_h, w + off_w). One thread per cell of dx, which is
// dx_pad (off = 0, Hx = Hp) or the cropped dx (off = top/left, Hx = H). Same
// order as ops.conv2d.col2im (taps row-major), so the same sums.
template <typename T>
__global__ void npcnn_col2im(const T* dcols, T* dx, long long total, int Hx, int Wx, int C,
                             int Ho, int Wo, int kh, int kw, int sh, int sw, int off_h,
                             int off_w) {
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (long long)gridDim.x * blockDim.x) {
        int c = (int)(k % C);
        long long r = k / C;
        int w = (int)(r % Wx);
        r /= Wx;
        int h = (int)(r % Hx);
        long long n = r / Hx;
        int hp = h + off_h, wp = w + off_w;
        int oh_lo = hp >= kh ? (hp - kh) / sh + 1 : 0;
        int oh_hi = npcnn_imin(hp / sh, Ho - 1);
        int ow_lo = wp >= kw ? (wp - kw) / sw + 1 : 0;
        int ow_hi = npcnn_imin(wp / sw, Wo - 1);
        T acc = (T)0;
        for (int oh = oh_hi; oh >= oh_lo; --oh) {
            int i = hp - oh * sh;
            for (int ow = ow_hi; ow >= ow_lo; --ow) {
                int j = wp - ow * sw;
                acc += dcols[((((n * Ho + oh) * Wo + ow) * kh + i) * kw + j) * C + c];
            }
        }
        dx[k] = acc;
    }
}

// Keras's Adam over many parameters in one launch: blockIdx.y picks the
// parameter q (pointers in ptrs[4q .. 4q+3] = p, g, m, v; sizes[q] elements),
// blockIdx.x/threadIdx.x stride over its elements. Same operations, same
// order as npcnn/ops/adam.py:
//   m += (g - m) * omb1;  v += (g*g - v) * omb2;  p -= m * alpha / (sqrt(v) + eps)
template <typename T>
__global__ void npcnn_adam(const unsigned long long* ptrs, const long long* sizes, T alpha,
                           T omb1, T omb2, T eps) {
    int q = blockIdx.y;
    T* p = (T*)ptrs[4 * q];
    const T* g = (const T*)ptrs[4 * q + 1];
    T* m = (T*)ptrs[4 * q + 2];
    T* v = (T*)ptrs[4 * q + 3];
    long long size = sizes[q];
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < size;
         k += (long long)gridDim.x * blockDim.x) {
        T gk = g[k];
        T mk = m[k];
        T vk = v[k];
        mk = mk + (gk - mk) * omb1;
        vk = vk + (gk * gk - vk) * omb2;
        m[k] = mk;
        v[k] = vk;
        p[k] = p[k] - mk * alpha / (npcnn_sqrt<T>(vk) + eps);
    }
}
