"""Exploratory: forward, input-gradient and weight-gradient convolutions of ConvNet layers, XLA vs matmul."""
import time, jax
from dcjax.nets.convolution import _xla_conv, _kernel_gradient
def bench(name, f, *a, flops=None):
    f = jax.jit(f); jax.block_until_ready(f(*a)); t=time.time()
    for _ in range(3): r = f(*a)
    jax.block_until_ready(r); dt=(time.time()-t)/3
    print(f"{name:40s} {dt*1000:8.1f} ms", f"{flops/dt/1e9:6.1f} GF/s" if flops else "")
for (B, H, cin, cout, pad) in [(100, 28, 1, 128, 3), (100, 16, 128, 128, 1), (100, 8, 128, 128, 1), (640, 16, 128, 128, 1)]:
    Ho = H + 2*pad - 2
    x = jax.random.normal(jax.random.PRNGKey(0), (B, H, H, cin)); w = jax.random.normal(jax.random.PRNGKey(1), (3,3,cin,cout))
    dy = jax.random.normal(jax.random.PRNGKey(2), (B, Ho, Ho, cout))
    fl = 2*B*Ho*Ho*cout*cin*9
    print("shape", B, H, cin, cout)
    bench("fwd xla", lambda x, w: _xla_conv(x, w, pad, 1), x, w, flops=fl)
    bench("dx xla", lambda dy, w: jax.vjp(lambda x_: _xla_conv(x_, w, pad, 1), x)[1](dy)[0], dy, w, flops=fl)
    bench("dw einsum", lambda x, dy: _kernel_gradient(x, dy, pad, (3,3)), x, dy, flops=fl)
    bench("dw xla", lambda x, dy: jax.vjp(lambda w_: _xla_conv(x, w_, pad, 1), w)[1](dy)[0], x, dy, flops=fl)
