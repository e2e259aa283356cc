// placeholder; replaced by the harness
export default function setup(): void {}
