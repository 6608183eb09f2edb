"""MNIST's sizes, defined once: the two files' image counts, the pixels, the classes and the standard split."""

IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE  # 784: one network input per pixel
N_CLASSES = 10  # the digits 0-9: one network output per class
N_TRAIN_FILE = 60_000  # images in the training file; training and validation images are both cut from it
N_TEST_FILE = 10_000  # images in the test file

#: The standard split (the convention of Nielsen's book): the first 50,000 training images train,
#: the last 10,000 validate.
TRAIN_SIZE = 50_000
VAL_SIZE = N_TRAIN_FILE - TRAIN_SIZE
