"""scikit-learn's bundled 8x8 digits (offline), split as every demo and benchmark splits them."""

__all__ = ["load_data", "digits_images"]


def load_data(seed):
    """Digits scaled to [0, 1], split 80/20 stratified: (x_train, x_test, y_train, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.2, stratify=y, random_state=seed)


def digits_images(seed=0):
    """(x_train, x_test, y_train, y_test) with images (N, 1, 8, 8) in [0, 1]."""
    x_tr, x_te, y_tr, y_te = load_data(seed)
    return x_tr.reshape(-1, 1, 8, 8), x_te.reshape(-1, 1, 8, 8), y_tr, y_te
