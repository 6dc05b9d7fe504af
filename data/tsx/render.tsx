render(): JSX.Element {
  return <span>{this.props.label}</span>;
}
