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

// Linear index k of a C-contiguous (N, H, W, C) array -> its (n, h, w, c).
__device__ __forceinline__ void npcnn_nhwc(long long k, int H, int W, int C, long long* n,
                                           int* h, int* w, int* c) {
    *c = (int)(k % C);
    long long r = k / C;
    *w = (int)(r % W);
    r /= W;
    *h = (int)(r % H);
    *n = r / H;
}

// The windows (size ksize, stride s, n_out of them) that cover padded index p:
// those at o in [*lo, *hi], i.e. o*s <= p < o*s + ksize.
__device__ __forceinline__ void npcnn_windows_over(int p, int ksize, int s, int n_out, int* lo,
                                                   int* hi) {
    *lo = p >= ksize ? (p - ksize) / s + 1 : 0;
    *hi = npcnn_imin(p / s, n_out - 1);
}

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
        long long n;
        int oh, ow, c;
        npcnn_nhwc(k, Ho, Wo, C, &n, &oh, &ow, &c);
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
// windows whose winning tap is this cell (the windows over it: npcnn_windows_over).
// The ops add tap by tap in row-major order; tap i = hp - oh*sh grows as oh
// shrinks, so oh (and ow) run downwards to add in the same order.
template <typename T>
__global__ void npcnn_maxpool_bwd(const T* dy, const int* arg, T* dx, long long total, int H,
                                  int W, int C, int Ho, int Wo, int ph, int pw, int sh, int sw,
                                  int top, int left) {
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (long long)gridDim.x * blockDim.x) {
        long long n;
        int h, w, c, oh_lo, oh_hi, ow_lo, ow_hi;
        npcnn_nhwc(k, H, W, C, &n, &h, &w, &c);
        int hp = h + top, wp = w + left;
        npcnn_windows_over(hp, ph, sh, Ho, &oh_lo, &oh_hi);
        npcnn_windows_over(wp, pw, sw, Wo, &ow_lo, &ow_hi);
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
        long long n;
        int h, w, c, oh_lo, oh_hi, ow_lo, ow_hi;
        npcnn_nhwc(k, Hx, Wx, C, &n, &h, &w, &c);
        int hp = h + off_h, wp = w + off_w;
        npcnn_windows_over(hp, kh, sh, Ho, &oh_lo, &oh_hi);
        npcnn_windows_over(wp, kw, sw, Wo, &ow_lo, &ow_hi);
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
