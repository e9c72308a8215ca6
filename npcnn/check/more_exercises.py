"""The exercises' docstrings of the layers beyond the tutorial's (``exercises.py`` has the
tutorial's): each op's forward and backward, with the shapes and the math."""

MORE_DOCS = {
    "batchnorm": (
        """Batch normalization, training mode, over every axis but the last (channels):

        mean = sum(x) / m        var = sum((x - mean)**2) / m     (m values per channel)
        x_hat = (x - mean) / sqrt(var + epsilon)       y = gamma * x_hat + beta

    var divides by m, not m - 1: the biased variance, as Keras.

    Args:
        x: (N, C) or (N, H, W, C), float32 or float64.  gamma, beta: (C,).
    Returns:
        (y, cache, (mean, var)): y has x's shape; mean and var (C,) are the
        batch's statistics (a layer moves its running averages toward them).
    """,
        """Gradients of y. mean and var depend on every x of the channel, so dx
    has three paths: direct, through the mean, through the variance. With
    g = dy * gamma and inv = 1 / sqrt(var + epsilon) they add up to

        dx = (inv / m) * (m * g - sum(g) - x_hat * sum(g * x_hat))

    (sums over every axis but the channels'). Derive it, then check it.

    Args:
        dy: dL/dy, x's shape.  cache: what batchnorm_forward returned.
    Returns:
        (dx, dgamma, dbeta): x's shape, (C,), (C,); dgamma = sum(dy * x_hat).
    """,
    ),
    "batchnorm_inference": (
        """Batch normalization, inference mode: the moving statistics, not the batch's.

        x_hat = (x - moving_mean) / sqrt(moving_var + epsilon)     y = gamma * x_hat + beta

    The layer's moving averages were made during training; here they are
    constants. Read them, never change them: only training moves them.

    Args:
        x: (N, C) or (N, H, W, C), float32 or float64.
        gamma, beta, moving_mean, moving_var: (C,), x's dtype.
    Returns:
        (y, cache): y has x's shape.
    """,
        """Gradients of y = gamma * (x - moving_mean) / sqrt(moving_var + epsilon) + beta.

    The statistics are constants here, so dx has one path only.

    Args:
        dy: dL/dy, x's shape.  cache: what batchnorm_inference_forward returned.
    Returns:
        (dx, dgamma, dbeta): x's shape, (C,), (C,); dgamma = sum(dy * x_hat),
        dbeta = sum(dy) (sums over every axis but the channels').
    """,
    ),
    "dropout": (
        """Dropout, training mode (inverted dropout, as Keras): drop each value with
    probability rate, scale the kept ones by 1 / (1 - rate).

        keep = rng.random(x.shape) >= rate      (one draw per value, from rng)
        y = x / (1 - rate) where keep, else 0

    The scaling keeps y's expected value equal to x, so inference passes x
    through unchanged. Draw the mask exactly as above: the check gives your
    function and npcnn's generators with the same seed.

    Args:
        x: any shape, float32 or float64.  rate: in [0, 1).
        rng: a numpy.random.Generator.
    Returns:
        (y, cache): y has x's shape and dtype.
    """,
        """dx = dy * keep / (1 - rate): the forward's mask and scale (its local derivative).

    Args:
        dy: dL/dy, x's shape.  cache: what dropout_forward returned.
    Returns:
        dx, x's shape and dtype.
    """,
    ),
    "avgpool2d": (
        """2-D average pooling, NHWC: the mean of each window, channel by channel.

        y[n, oh, ow, c] = sum_{i, j} x_pad[n, oh*sh + i, ow*sw + j, c] / count[oh, ow]

    Args:
        x: (N, H, W, C), float32 or float64.
        pool_size: an int or a pair (ph, pw).
        strides: an int, a pair, or None: then the stride is the pool size.
        padding: 'valid' or 'same', with conv2d's arithmetic. With 'same', a
            border window holds padded cells: average over the cells inside
            the image only (count = how many they are), as TensorFlow does.
    Returns:
        (y, cache): y (N, H_out, W_out, C).
    """,
        """Each window's gradient is shared equally by the cells it averaged.

    Every cell of a window gets dy[window] / count[window] (the local
    derivative of a mean of count terms is 1 / count); a cell in several
    overlapping windows gets the sum; padded cells are not part of x.

    Args:
        dy: dL/dy (N, H_out, W_out, C).  cache: what avgpool2d_forward returned.
    Returns:
        dx (N, H, W, C).
    """,
    ),
    "global_avgpool2d": (
        """Global average pooling: the mean over H and W, (N, H, W, C) -> (N, C).

    Args:
        x: (N, H, W, C), float32 or float64.
    Returns:
        (y, cache): y (N, C).
    """,
        """Each of the H * W cells of a channel gets dy / (H * W).

    Args:
        dy: dL/dy (N, C).  cache: what global_avgpool2d_forward returned.
    Returns:
        dx (N, H, W, C).
    """,
    ),
    "leaky_relu": (
        """Leaky ReLU, elementwise: y = x where x > 0, else negative_slope * x.

    Keras's LeakyReLU slope defaults to 0.3 (PyTorch's to 0.01).

    Args:
        x: any shape, float32 or float64.  negative_slope: a number >= 0.
    Returns:
        (y, cache): y has x's shape and dtype.
    """,
        """dx = dy where x > 0, else negative_slope * dy.

    At exactly x = 0 take the slope (TensorFlow does).

    Args:
        dy: dL/dy, x's shape.  cache: what leaky_relu_forward returned.
    Returns:
        dx, x's shape and dtype.
    """,
    ),
    "sigmoid": (
        """Sigmoid, elementwise: s = 1 / (1 + exp(-x)).

    exp(-x) overflows for very negative x: exp(x) / (1 + exp(x)) is the same
    number and stays finite there.

    Args:
        x: any shape, float32 or float64.
    Returns:
        (s, cache): s has x's shape and dtype.
    """,
        """dx = dy * s * (1 - s), written with the output s.

    Args:
        dy: dL/ds, x's shape.  cache: what sigmoid_forward returned.
    Returns:
        dx, x's shape and dtype.
    """,
    ),
    "tanh": (
        """tanh, elementwise: t = (exp(x) - exp(-x)) / (exp(x) + exp(-x)) (np.tanh).

    Args:
        x: any shape, float32 or float64.
    Returns:
        (t, cache): t has x's shape and dtype.
    """,
        """dx = dy * (1 - t**2), written with the output t.

    Args:
        dy: dL/dt, x's shape.  cache: what tanh_forward returned.
    Returns:
        dx, x's shape and dtype.
    """,
    ),
}
