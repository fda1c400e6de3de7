# coreplay in a Jupyter notebook cell (Jupyter, JupyterLab, VS Code).
# What to change: COREPLAY, where coreplay's page is served (a running `coreplay serve`, or any
# static host of dist/ from `trunk build --release`; it must be reachable from the browser that
# shows the notebook, and be https when the notebook is); and the trace= path, the recorded run.
from IPython.display import IFrame

COREPLAY = "http://127.0.0.1:7878/"

IFrame(
    src=COREPLAY + "?embed&trace=gallery/gil.coreplay.gz&view=cores,timeline&speed=100us&autoplay&loop",
    width=960,
    height=540,
)
